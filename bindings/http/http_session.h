// One device's P-IMAP session over HTTP (the draft's HTTPS binding): the IMAP
// command stream that the bodies of its POSTs carry, one after another, and the
// routing of what the session produces back into the responses of those POSTs.
//
// The bodies are framed with one imap::Framer for the whole session, so a
// command may continue in the next POST. Before login the commands are answered
// through session_login.h; LOGIN / AUTHENTICATE PLAIN (SASL-IR) start the
// shared login, and from then on every command goes to the transport-free
// session driver (the P-IMAP engine), exactly as over TCP. No P-IMAP behaviour
// is here.
//
// Each POST is an Exchange: a sink for output that completes once every command
// its body completed has its tagged answer. Output always goes to the oldest
// open exchange; the response line that completes it moves what follows on to
// the next one (output is framed as IMAP responses to find those lines,
// literals included). A batch ending in IDLE becomes a long poll: its response
// streams the events and ends with the IDLE's tagged answer, when a later POST
// of the session arrives (with DONE, or the gateway inserts one) or after
// --http-idle-max.
//
// Acknowledgement (architecture.md §4): a POST acknowledges what the responses
// before it carried, never what its own response carries. A response that
// could not be completed (its connection closed) ends the HTTP session: the
// P-IMAP session lives on in the registry and a LOGIN resumes it exactly.
#ifndef PIMAP_BINDINGS_HTTP_HTTP_SESSION_H_
#define PIMAP_BINDINGS_HTTP_HTTP_SESSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "core/base/client_address.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/imap/framer.h"
#include "core/imap/limits.h"
#include "core/session/command_router.h"
#include "core/session/device_driver.h"
#include "core/session/session_driver.h"
#include "core/session/session_login.h"

namespace pimap::cluster {
class ShardCluster;
}

namespace pimap::http_binding {

// Where an exchange writes its response: one HTTP request's (http_connection.h;
// an HTTP/2 stream later).
class ResponseSink {
 public:
  // Status 200 with the session's headers. `length` >= 0: a body of exactly
  // that many bytes follows; -1: the body streams (chunked).
  virtual void WriteHead(absl::string_view extra_headers, int64_t length) = 0;
  virtual void WriteBody(absl::string_view bytes) = 0;
  // The body is complete; the sink is free for its next request.
  virtual void EndBody() = 0;
  virtual size_t PendingOutput() const = 0;
  // Where the request came from (the session's login and log lines).
  virtual const ClientAddress& client_address() const {
    static const ClientAddress kUnknown;
    return kUnknown;
  }
  // Persistent exchanges (HttpSession::Open) only:
  // The session took what was appended: the sink may read more.
  virtual void OnInputConsumed() {}
  // A login names a user of shard `owner`: the exchange must go on there,
  // the session starting with `replay` (the login and what followed it).
  // The session has forgotten the sink already.
  virtual void MoveTo(int owner, std::string replay) {}
  // The session logged in: the connection carrying this exchange is no
  // longer one "not logged in" (the shard's pre-auth bounds).
  virtual void OnAuthenticated() {}

 protected:
  ~ResponseSink() = default;
};

struct HttpSessionConfig {
  imap::ParserLimits limits;
  std::string path = "/pimap";            // cookie Path
  bool login_allowed = true;              // over TLS, or plaintext allowed
  imap::UserNameFormat user_name_format;  // --user-name-format
  int64_t idle_max_ms = 10 * 60 * 1000;   // longest long poll
  // An authenticated session without a request for this long ends.
  int64_t session_idle_ms = 31 * 60 * 1000;
  // Open exchanges (POSTs waiting for their response) per session, at most.
  size_t max_exchanges = 4;
};

// The server's side: the session table (cookies) and the shard's services.
class HttpSessionOwner {
 public:
  virtual const HttpSessionConfig& session_config() const = 0;
  virtual session::LoginServices LoginServices() = 0;
  // The shard's services the session uses (not the shard itself: the session
  // runs against fakes in tests).
  virtual ShardCounters& counters() = 0;
  virtual TimerWheel& timers() = 0;
  virtual int shard_id() const = 0;
  virtual int shard_count() const = 0;
  // The shard's part of the cluster (--cluster-etcd), or null: a login claims
  // its user there first (core/cluster/shard_cluster.h).
  virtual cluster::ShardCluster* cluster() { return nullptr; }
  // The session logged in: give it a cookie (routing it to this shard).
  virtual std::string Authenticated(class HttpSession* session) = 0;
  // The session is over: forget its cookie (it frees itself next).
  virtual void Ended(class HttpSession* session) = 0;

 protected:
  ~HttpSessionOwner() = default;
};

// The user a body's first login command (LOGIN, AUTHENTICATE PLAIN with an
// initial response) names, to route the request to the owner shard before any
// of it runs; under the store's rule as the login will be (null: as given).
std::optional<std::string> FirstLoginUser(
    absl::string_view body, const imap::ParserLimits& limits,
    const imap::UserNameFormat* user_name_format = nullptr);

class HttpSession final : private imap::Framer::Visitor,
                          private session::DeviceOutput,
                          private session::LoginClient {
 public:
  // `secure`: the request came over TLS (cookie attribute Secure).
  // `stale_cookie`: the request carried a cookie this shard does not know.
  HttpSession(HttpSessionOwner* owner, bool secure, bool stale_cookie);

  // A POST's body joins the session's command stream; `sink` gets its
  // response. False (nothing taken): too many requests of this session wait.
  bool Submit(std::string body, ResponseSink* sink);
  // A persistent full-duplex exchange (the draft's persistent chunked mode):
  // its response opens at once and streams, one response line per write; its
  // request body arrives by Append() and ends with EndInput(). The connection
  // is the session: no cookie. `head_sent`: the response opened already (a
  // connection moved here from another shard). False: another exchange is
  // open.
  bool Open(ResponseSink* sink, bool head_sent);
  void Append(absl::string_view bytes);
  void EndInput();
  // Bytes appended and not yet taken by the session (the sink stops reading
  // past a bound, until OnInputConsumed()).
  size_t input_backlog() const;
  // `sink` closed before its response ended.
  void OnSinkGone(ResponseSink* sink);
  // `sink`'s output went below its high-water mark.
  void OnSinkDrained();
  // Ends the session (server stop): "* BYE reason" to open responses.
  void End(absl::string_view reason);

  const std::string& cookie() const { return cookie_; }
  // Expires when the session ends: a sink that must tell it something later
  // (from the event loop, never from inside a call of the session's) checks
  // it first.
  std::weak_ptr<bool> liveness() const { return alive_; }
  bool authenticated() const { return state_ == State::kAuthenticated; }

 private:
  enum class State : uint8_t {
    kNotAuthenticated,
    kLoggingIn,
    kAuthenticated,
    kEnded,
  };
  struct Exchange {
    ResponseSink* sink = nullptr;  // null once gone
    std::string body;              // not yet framed
    size_t body_pos = 0;
    std::string held;  // output before the head is written
    // Tags of commands fed from this body, not yet answered (with counts:
    // a client may reuse a tag).
    absl::flat_hash_map<std::string, int> waiting;
    bool fed = false;  // the whole body has been framed
    bool head_sent = false;
    bool streaming = false;    // chunked: a long poll, or a large answer
    bool duplex = false;       // a persistent exchange (Open)
    bool input_open = false;   // ... whose body goes on
    std::string more;          // appended while the body was being framed
    std::string partial_line;  // output: a line's start, waiting for its end
  };
  // Finds the tagged answers and IDLE's "+" in the output stream.
  class OutputScanner final : public imap::Framer::Visitor {
   public:
    explicit OutputScanner(HttpSession* s) : s_(s) {}
    bool OnLine(absl::string_view line,
                const imap::LiteralHeader* literal) override;
    bool OnLiteralData(absl::string_view) override { return true; }
    bool OnEnd() override;
    bool OnError(const imap::FrameError&) override { return true; }
    bool completes = false;  // the oldest exchange completed at this OnEnd

   private:
    HttpSession* s_;
    std::string tag_;  // of the response being framed ("*", "+" or a tag)
  };
  // Answers every command before login (session_login.h).
  class PreAuthRouter final : public session::CommandRouter {
   public:
    explicit PreAuthRouter(HttpSession* s);
    // Answers go through the router's output, so that an XZIP captures them.
    void Answer(std::string bytes) { Write(std::move(bytes)); }

   private:
    void Execute(const imap::Command& command) override {
      s_->ExecutePreAuthCommand(command);
    }
    bool WritesThroughOutput() const override { return true; }
    HttpSession* s_;
  };
  class Busy {
   public:
    explicit Busy(HttpSession* s) : s_(s) { ++s_->busy_; }
    ~Busy();

   private:
    HttpSession* s_;
  };

  ~HttpSession() override;

  session::SessionDriver& commands();
  void Pump();
  void ExecutePreAuthCommand(const imap::Command& command);
  // Output: routed to the oldest open exchange, split where one completes.
  void Route(absl::string_view bytes);
  void Deliver(Exchange& e, absl::string_view bytes);
  void StartStreaming(Exchange& e);
  void CompleteReady();
  void Complete();
  std::string Headers();
  void ArmIdleMax();
  void ArmExpiry();
  void Free();

  // imap::Framer::Visitor (the POST bodies)
  bool OnLine(absl::string_view line,
              const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view chunk) override;
  bool OnEnd() override;
  bool OnError(const imap::FrameError& error) override;
  bool reading() const {
    return !blocked_ && !login_running_ && move_to_ < 0 &&
           state_ != State::kEnded;
  }
  // A persistent exchange's login for another shard: hands the exchange over.
  void MoveExchange(Exchange& e, absl::string_view rest);

  // session::DeviceOutput
  void WriteResponse(std::string bytes) override;
  bool WritePassThrough(absl::string_view bytes) override;
  void EndPassThrough() override;
  void SetCommandRunning(bool running, bool resume) override;
  void LoginDone(bool ok) override;
  void RelayedDone(absl::string_view) override {}
  void RelayDrained() override {}
  void EndSession(absl::string_view reason) override { End(reason); }
  void Close() override;
  // HTTP has its own content coding; COMPRESS cannot switch a request.
  bool OffersCompression() const override { return false; }
  absl::string_view Binding() const override { return "http"; }
  bool Secure() const override { return secure_; }
  // In a cluster: the user's claim (core/cluster/shard_cluster.h), then the
  // store login.
  void ClaimThenLogin(cluster::ShardCluster* cluster,
                      session::PendingLogin login);
  // session::LoginClient
  bool OnAuthenticated(const std::string& user, const std::string& device,
                       absl::string_view how) override;
  void OnSessionDriver(session::SessionDriver* driver) override {
    driver_ = driver;
  }
  void OnLoginFailed(std::string response) override;

  HttpSessionOwner* owner_;
  const HttpSessionConfig& config_;
  ShardCounters& counters_;
  TimerWheel& timers_;
  imap::Framer framer_;      // the commands, across POSTs
  imap::Framer out_framer_;  // the responses, to route them
  OutputScanner scanner_{this};
  // Oldest first; a handful at most (max_exchanges). A vector: an empty
  // std::deque allocates ~600 bytes, held by every idle session.
  std::vector<std::unique_ptr<Exchange>> exchanges_;
  Exchange* feeding_ = nullptr;  // whose body the framer is reading
  // Output while no exchange is open (a goodbye between requests).
  std::string stash_;
  // Own output held back while a store response streams through.
  std::string deferred_;
  std::string cookie_;
  std::string user_;
  // The latest request's client (a session may move between connections).
  ClientAddress client_;
  // The ID parameters the client sent before login (client_id.h).
  std::string client_id_;
  std::string current_tag_;  // of the command being framed
  std::string idle_tag_;     // of the IDLE fed and not yet answered
  PreAuthRouter* pre_auth_ = nullptr;
  session::SessionDriver* driver_ = nullptr;
  std::shared_ptr<bool> alive_;
  TimerWheel::TimerId idle_max_timer_ = 0;
  TimerWheel::TimerId expiry_timer_ = 0;
  int64_t last_request_ms_ = 0;
  int move_to_ = -1;        // shard a persistent exchange moves to
  std::string move_login_;  // the login to replay there
  int busy_ = 0;
  State state_ = State::kNotAuthenticated;
  bool secure_;
  bool stale_cookie_;
  bool blocked_ = false;        // the driver runs a command
  bool login_running_ = false;  // a login waits for the store
  bool in_pump_ = false;
  bool in_command_ = false;        // a command's lines are being framed
  bool current_answered_ = false;  // ... and its tagged answer came already
  bool paused_in_line_ = false;    // an OnEnd is owed by the framer
  bool mid_pass_ = false;          // a store response streams through
  bool cookie_sent_ = false;
  bool logged_out_ = false;
  bool free_pending_ = false;
};

}  // namespace pimap::http_binding

#endif  // PIMAP_BINDINGS_HTTP_HTTP_SESSION_H_
