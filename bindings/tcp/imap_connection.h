// One device's IMAP connection to the gateway: an explicit state machine
// (not authenticated → logging in → authenticated → closing) over a Transport.
// Before login it answers locally (CAPABILITY, NOOP, ID, STARTTLS, LOGIN,
// AUTHENTICATE PLAIN, LOGOUT) within an absolute deadline from the accept
// (--login-timeout; bytes do not extend it); LOGIN moves the connection to the
// shard that owns the user, which logs in to the store. After that the session
// is a transport-free session::SessionDriver's (a regular session's relay, or a
// P-IMAP device's engine), for which this class only frames commands, carries
// bytes, applies backpressure and keeps the timers.
#ifndef PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_
#define PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "bindings/tcp/hibernated_connection.h"
#include "bindings/tcp/imap_server.h"
#include "core/base/timer_wheel.h"
#include "core/engine/transport.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/imap/login_name.h"
#include "core/session/command_router.h"
#include "core/session/device_driver.h"
#include "core/session/session_driver.h"
#include "core/session/session_login.h"
#include "core/session/store_link.h"

namespace pimap {
class PreAuthGate;
}  // namespace pimap

namespace pimap::engine {
class Socket;
}
namespace pimap::cluster {
struct Member;
}

namespace pimap::tcp {

using session::PendingLogin;

class ImapConnection final : private engine::TransportHandler,
                             private imap::Framer::Visitor,
                             private session::DeviceOutput,
                             private session::LoginClient,
                             public ServedConnection {
 public:
  // A connection accepted on this shard from `client`.
  static void Accept(ImapServer* server, int slot, bool implicit_tls,
                     const ClientAddress& client);
  // A connection handed over from another shard, with its login to finish
  // (its client's address in it) by the accepting shard's login deadline.
  static void Arrive(ImapServer* server, int slot, SSL* ssl, std::string input,
                     PendingLogin login, int64_t login_deadline_ms);
  // A device another cluster node forwarded here (forward_listener.h):
  // `socket` carried the forward line, `input` is what followed it.
  static void ArriveForwarded(ImapServer* server, engine::Socket* socket,
                              std::string input, PendingLogin login);

  // Shutdown: "* BYE" and close.
  void Shutdown(absl::string_view reason) override;
  bool ServesUser() const override {
    return state_ == State::kLoggingIn || state_ == State::kAuthenticated;
  }

 private:
  // A hibernated device (hibernated_connection.h) is rebuilt into one of
  // these: it reaches in for the rebuild and the call that woke it.
  friend class HibernatedConnection;

  enum class State : uint8_t {
    kNotAuthenticated,
    kSaslResponse,
    kLoggingIn,
    kAuthenticated,
    kClosing
  };
  // Reasons to stop reading the device (bits).
  enum Block : uint8_t {
    kBlockLogin = 1,     // waiting for the store login
    kBlockHandover = 2,  // moving to the owner shard
    kBlockSession = 4,   // the session driver holds input (a command runs,
                         // answers wait in order, the store is full)
  };
  // The commands before login are routed like a session's, all of them local:
  // parsed, then answered by ExecuteLocal (or taken as an AUTHENTICATE
  // response line). Released once logged in.
  class PreLogin final : public session::CommandRouter {
   public:
    explicit PreLogin(ImapConnection* c);
    std::string sasl_tag;  // of the AUTHENTICATE waiting for its response line
    // An answer of ExecuteLocal's, through the router's output (an XZIP
    // running the command captures it).
    void Respond(std::string bytes) { Write(std::move(bytes)); }
    // LITERAL- before login (RFC 7888 section 4).
    static constexpr uint64_t kMaxUnaskedLiteral = 4096;

   private:
    uint64_t MaxUnaskedLiteral() const override { return kMaxUnaskedLiteral; }
    Opening OpenLine(absl::string_view line,
                     const imap::LiteralHeader* literal) override;
    void Execute(const imap::Command& command) override {
      c_->ExecuteLocal(command);
    }
    const session::DriverServices* services() const override {
      return &services_;
    }
    bool WritesThroughOutput() const override { return true; }
    ImapConnection* c_;
    session::DriverServices services_;  // for XZIP
  };

  // `initial_input` and `initial_block` are in place before the transport's
  // handler is set: a handed-over TLS session may decrypt buffered bytes at
  // once.
  ImapConnection(ImapServer* server, engine::Socket* socket,
                 engine::Transport* transport, bool tls_active,
                 const ClientAddress& client, int64_t login_deadline_ms,
                 std::string initial_input = "", unsigned initial_block = 0);
  ~ImapConnection() override;
  // A hibernated P-IMAP device rebuilt: authenticated, in the gateway's own
  // IDLE of `state`, the session's events coming to its engine instead of
  // `keeper`. Start() sets the transport's handler.
  static ImapConnection* Rebuild(ImapServer* server,
                                 HibernatedTransport transport,
                                 const session::HibernatedIdle& state,
                                 session::DeviceLink* keeper);
  // The woken engine, for the call that woke it.
  session::DeviceLink* device_link();
  // Hibernates when the connection and its session are at rest
  // (hibernation.h); true when this connection is gone.
  bool MaybeHibernate();
  // The activity timer's next delay while authenticated (the autologout, or
  // sooner the next look at whether to hibernate).
  int64_t AuthenticatedTimerDelay(int64_t idle_ms) const;

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportDrained() override;
  void OnTransportClosed(absl::Status reason) override;
  // imap::Framer::Visitor: the commands go to commands().
  bool OnLine(absl::string_view line,
              const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view chunk) override;
  bool OnEnd() override;
  bool OnError(const imap::FrameError& error) override;

  void Greet();
  // Sets the transport's handler (reads start unless blocked).
  void Start();
  void ProcessInput();
  void SetBlocked(unsigned bit, bool on);
  // Feed goes on (nothing blocks input and the connection lives).
  bool reading() const { return blocked_ == 0 && state_ != State::kClosing; }
  // Who takes the device's commands: the session driver once logged in, else
  // the pre-login router (made on demand).
  session::SessionDriver& commands();
  bool HandleSaslResponse(absl::string_view line);
  session::PreAuthPolicy PreAuth() const;
  void ExecuteLocal(const imap::Command& command);
  // Carries out what a command before login asks for (session_login.h);
  // true when a login started.
  bool TakePreAuthStep(session::PreAuthStep step, const std::string& tag);
  void DoStartTls(const std::string& tag);
  void StartLogin(PendingLogin login);
  // On the user's shard: in a cluster, the user's claim first
  // (core/cluster/shard_cluster.h), then the store login.
  void ClaimThenLogin(PendingLogin login);
  void StartStoreLogin(PendingLogin login);
  void HandOver(int owner, PendingLogin login);
  // Splices the device to the cluster node that serves its user
  // (forwarded_connection.h); this object is gone afterwards.
  void ForwardToNode(const cluster::Member& member, PendingLogin login);
  void SpliceToNode(const cluster::Member& member, PendingLogin login);
  // The login cannot be placed in the cluster now: NO [UNAVAILABLE].
  void RefuseUnplaced(const PendingLogin& login, absl::string_view why);
  // session::LoginClient (the store login, or the auth cache).
  bool OnAuthenticated(const std::string& user, const std::string& device,
                       absl::string_view how) override;
  void OnSessionDriver(session::SessionDriver* driver) override {
    driver_ = driver;
  }
  void OnLoginFailed(std::string response) override;
  // Back to not authenticated: past the login deadline the connection ends.
  void CheckLoginDeadline();
  // Counted by the shard's PreAuthGate until it logs in or closes.
  void EnterPreAuth(PreAuthGate* gate) { preauth_ = gate; }
  void LeavePreAuth();
  // The shard's services a session driver uses.
  session::DriverServices Services();

  // Writes a response of our own; held back while a store response is only
  // partly written, so that bytes never interleave inside one response.
  void WriteLocal(std::string bytes);
  void WriteBad(absl::string_view tag, absl::string_view message);
  void CheckOutputBound();
  void TouchActivity();
  void ArmActivityTimer(int64_t delay_ms);
  void OnActivityTimer();
  void Destroy();
  // The event=conn.close line; `why`: who ended it (server, client, error).
  void LogClose(absl::string_view why) const;

  // session::DeviceOutput: what the session driver writes and asks for.
  void WriteResponse(std::string bytes) override {
    WriteLocal(std::move(bytes));
  }
  bool WritePassThrough(absl::string_view bytes) override;
  void EndPassThrough() override;
  void SetCommandRunning(bool running, bool resume) override;
  void LoginDone(bool ok) override;
  // Relayed commands are the driver's to track (session/command_router.h).
  void RelayedDone(absl::string_view) override {}
  void RelayDrained() override {}
  void EndSession(absl::string_view reason) override { Shutdown(reason); }
  absl::Status StartCompression(std::string ok) override;
  bool Secure() const override { return tls_active_; }
  void Close() override;

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
  engine::Socket* socket_;  // the socket under transport_ (same or wrapped)
  engine::Transport* transport_;  // what we read and write
  imap::Framer framer_;
  std::string pending_input_;
  // Our own responses held back while a store response is partly written.
  std::string deferred_output_;
  std::string user_;      // set once logged in
  std::string device_;    // a P-IMAP device's id (log lines)
  ClientAddress client_;  // where the device connects from
  // The client's ID parameters before login, for the store (client_id.h).
  std::string client_id_;
  // XTERSE was on at the login (terse.h): for its failed answer, and for the
  // router made after it.
  bool terse_ = false;
  // Forwarded to this node by another cluster node this often: every login
  // on this connection carries it (a failed login followed by another must
  // not start a new chain of forwards).
  uint8_t forward_hops_ = 0;
  int64_t login_deadline_ms_;       // absolute: from the accept
  PreLogin* pre_login_ = nullptr;   // made on demand, released at login
  PreAuthGate* preauth_ = nullptr;  // counted there while not logged in
  // The session after login (null before): it owns the store side.
  session::SessionDriver* driver_ = nullptr;
  std::shared_ptr<bool> alive_;
  int64_t last_activity_ms_ = 0;
  TimerWheel::TimerId activity_timer_ = 0;
  TimerWheel::TimerId handover_timer_ = 0;
  int busy_ = 0;
  uint8_t blocked_ = 0;
  State state_ = State::kNotAuthenticated;
  bool tls_active_;
  bool mid_response_ = false;  // a store response is partly written
  bool destroy_pending_ = false;
  // STARTTLS answered: drop what was read in clear.
  bool starttls_reset_ = false;
  bool in_feed_ = false;  // inside framer_.Feed (no nested ProcessInput)
  // COMPRESS answered: the transport is wrapped once the framer stops at the
  // command's end, and what was read after it is inflated.
  bool compress_pending_ = false;
  bool compressed_ = false;
};

}  // namespace pimap::tcp

#endif  // PIMAP_BINDINGS_TCP_IMAP_CONNECTION_H_
