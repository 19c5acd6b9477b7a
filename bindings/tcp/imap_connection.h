// One device's IMAP connection to the gateway: an explicit state machine
// (not authenticated → logging in → authenticated/relaying → closing) over a
// Transport. Before login it answers locally (CAPABILITY, NOOP, STARTTLS, LOGIN,
// AUTHENTICATE PLAIN, LOGOUT); LOGIN moves the connection to the shard that owns the
// user, which logs in to the store. After that a regular session's commands are
// relayed; a P-IMAP session's (user#device) are handed to the transport-free
// session engine (core/session/device_driver.h), for which this class only frames
// commands, carries bytes and applies backpressure.
#ifndef PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_
#define PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_

#include <openssl/ssl.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/login_name.h"
#include "core/session/device_driver.h"
#include "core/session/store_link.h"

namespace pimap::engine {
class Socket;
}

namespace pimap::tcp {

class ImapServer;

// A login that is waiting for the store (and may travel to the owner shard).
struct PendingLogin {
  std::string tag;
  imap::LoginName name;
  std::string password;  // secret: never logged
};

class ImapConnection final : private engine::TransportHandler,
                             private imap::Framer::Visitor,
                             private session::StoreLinkClient,
                             private session::DeviceOutput {
 public:
  // A connection accepted on this shard.
  static void Accept(ImapServer* server, int slot, bool implicit_tls);
  // A connection handed over from another shard, with its login to finish.
  static void Arrive(ImapServer* server, int slot, SSL* ssl, std::string input,
                     PendingLogin login);

  // Shutdown: "* BYE" and close.
  void Shutdown(absl::string_view reason);

 private:
  enum class State { kNotAuthenticated, kSaslResponse, kLoggingIn, kAuthenticated, kClosing };
  enum class CommandMode { kNone, kLocal, kRelay, kSkip };
  // Reasons to stop reading the device (bits).
  enum Block : unsigned {
    kBlockLogin = 1,     // waiting for the store login
    kBlockStore = 2,     // the store's send queue is full
    kBlockOrdered = 4,   // a local command waits for relayed ones to complete
    kBlockHandover = 8,  // moving to the owner shard
    kBlockJob = 16,      // the P-IMAP session engine runs a command
  };

  // `initial_input` and `initial_block` are in place before the transport's
  // handler is set: a handed-over TLS session may decrypt buffered bytes at once.
  ImapConnection(ImapServer* server, engine::Socket* socket,
                 engine::Transport* transport, bool tls_active,
                 std::string initial_input = "", unsigned initial_block = 0);
  ~ImapConnection() override;

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;
  // imap::Framer::Visitor
  bool OnLine(absl::string_view line, const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view chunk) override;
  bool OnEnd() override;
  bool OnError(const imap::FrameError& error) override;
  // session::StoreLinkClient
  void OnStoreBytes(absl::string_view bytes) override;
  void OnStoreResponseEnd(absl::string_view completed_tag) override;
  void OnStoreDrained() override;
  void OnStoreClosed(absl::Status reason) override;

  void Greet();
  // Sets the transport's handler (reads start unless blocked).
  void Start();
  void ProcessInput();
  void SetBlocked(unsigned bit, bool on);
  bool StartCommand(absl::string_view line, const imap::LiteralHeader* literal);
  bool RelayLine(absl::string_view line, const imap::LiteralHeader* literal);
  bool HandleSaslResponse(absl::string_view line);
  void ExecuteLocal(const imap::Command& command);
  void DoStartTls(const std::string& tag);
  void DoAuthenticate(const imap::Command& command);
  void StartLogin(PendingLogin login);
  void StartStoreLogin(PendingLogin login);
  void HandOver(int owner, PendingLogin login);
  void OnStoreLogin(const std::string& tag, const std::string& user,
                    const std::string& device, const std::string& password,
                    absl::StatusOr<session::StoreLink*> link);

  // Writes a response of our own; held back while a store response is only
  // partly written, so that bytes never interleave inside one response.
  void WriteLocal(std::string bytes);
  void WriteBad(absl::string_view tag, absl::string_view message);
  void CheckOutputBound();
  void TouchActivity();
  void ArmActivityTimer(int64_t delay_ms);
  void OnActivityTimer();
  void Destroy();

  // session::DeviceOutput: what the P-IMAP session engine writes and asks for.
  void WriteResponse(std::string bytes) override { WriteLocal(std::move(bytes)); }
  bool WritePassThrough(absl::string_view bytes) override;
  void EndPassThrough() override;
  void SetCommandRunning(bool running, bool resume) override;
  void LoginDone(bool ok) override;
  void RelayedDone(absl::string_view tag) override { OnRelayedCompleted(tag); }
  void RelayDrained() override { OnStoreDrained(); }
  void EndSession(absl::string_view reason) override { Shutdown(reason); }
  void Close() override;
  // The store completed a relayed command: answers that waited behind it go out.
  void OnRelayedCompleted(absl::string_view tag);
  // Hands the logged-in device to the P-IMAP session engine (`link`: its login
  // link, or null after an auth-cache hit).
  void StartDriver(const std::string& tag, const std::string& user,
                   const std::string& device, const std::string& password,
                   session::StoreLink* link);
  // Sends relayed command bytes to the store (or through the session engine).
  void SendUp(absl::string_view bytes);

  // Keeps this alive while a call from outside (transport, store, timer) runs;
  // Destroy() inside it only marks, the last scope out frees.
  class Busy {
   public:
    explicit Busy(ImapConnection* c) : c_(c) { ++c_->busy_; }
    ~Busy() {
      if (--c_->busy_ == 0 && c_->destroy_pending_) delete c_;
    }
   private:
    ImapConnection* c_;
  };

  ImapServer* server_;
  engine::Socket* socket_;        // the socket under transport_ (same or wrapped)
  engine::Transport* transport_;  // what we read and write
  bool tls_active_;
  State state_ = State::kNotAuthenticated;
  imap::Framer framer_;
  imap::CommandAssembler assembler_;
  std::string pending_input_;
  unsigned blocked_ = 0;

  CommandMode mode_ = CommandMode::kNone;
  std::string command_tag_;
  bool relay_started_ = false;
  std::optional<imap::Command> deferred_command_;
  std::string deferred_bad_;
  std::string sasl_tag_;

  session::StoreLink* link_ = nullptr;
  // Tags relayed, not yet completed (a vector: a deque costs a 512-byte block
  // per connection even when it holds one tag).
  std::vector<std::string> outstanding_;
  std::string idle_tag_;
  std::string logout_tag_;
  bool mid_response_ = false;
  bool store_paused_ = false;
  std::string deferred_output_;
  std::string user_;    // set once logged in
  std::string device_;

  int64_t last_activity_ms_ = 0;
  TimerWheel::TimerId activity_timer_ = 0;
  int busy_ = 0;
  bool destroy_pending_ = false;
  bool starttls_reset_ = false;  // STARTTLS answered: drop what was read in clear
  bool in_feed_ = false;         // inside framer_.Feed (no nested ProcessInput)
  TimerWheel::TimerId handover_timer_ = 0;
  std::shared_ptr<bool> alive_;

  // The P-IMAP session engine of this device (null for a regular session): it
  // owns the store link then, and link_ stays null.
  session::DeviceDriver* driver_ = nullptr;
};

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_
