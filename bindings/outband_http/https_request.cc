// StartHttpsRequest (https_request.h): the connection's states are "connecting"
// (the socket's callback pending), "exchanging" (the TLS transport open) and
// done; the deadline timer and the connect callback check that the request
// is still alive (`alive_`) first.
#include "bindings/outband_http/https_request.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "bindings/tls/tls_context.h"
#include "bindings/tls/tls_transport.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"

namespace pimap::outband_http {
namespace {

class HttpsRequest final : private engine::TransportHandler {
 public:
  HttpsRequest(engine::Shard* shard, const tls::TlsContext* tls,
               std::string host, std::string request, HttpsDone done)
      : shard_(shard),
        tls_(tls),
        host_(std::move(host)),
        request_(std::move(request)),
        done_(std::move(done)),
        parser_(kMaxResponseBody) {
    parser_.set_parse_responses(true);
  }

  void Start(const HttpsTarget& target, int64_t timeout_ms) {
    timer_ = shard_->timers().Schedule(timeout_ms, [this] {
      timer_ = 0;
      Finish(absl::DeadlineExceededError(
          "the HTTP server did not answer in time"));
    });
    addresses_ = target.addresses;
    Connect();
  }

 private:
  void Connect() {
    if (next_address_ >= addresses_.size()) {
      Finish(absl::UnavailableError(absl::StrCat("connect: ", connect_error_)));
      return;
    }
    const engine::ResolvedAddress& to = addresses_[next_address_++];
    std::weak_ptr<bool> alive = alive_;
    engine::Socket::Connect(
        shard_, to.address, to.len,
        [this, alive](absl::StatusOr<engine::Socket*> socket) {
          if (alive.expired()) {  // finished meanwhile (the deadline)
            if (socket.ok()) (*socket)->Abort();
            return;
          }
          if (!socket.ok()) {
            connect_error_ = std::string(socket.status().message());
            Connect();  // the next address, if any
            return;
          }
          OnConnected(*socket);
        });
  }

  ~HttpsRequest() override = default;

  void OnConnected(engine::Socket* socket) {
    if (tls_ == nullptr) {  // plain http
      transport_ = socket;
      transport_->Write(std::move(request_));
      request_.clear();
      transport_->SetHandler(this);
      return;
    }
    SSL* ssl = tls_->NewClientSsl(host_);
    if (ssl == nullptr) {
      socket->Abort();
      Finish(absl::InternalError("no TLS client session"));
      return;
    }
    transport_ = new tls::TlsTransport(socket, ssl);
    // Held until the handshake is done, then sent.
    transport_->Write(std::move(request_));
    request_.clear();
    transport_->SetHandler(this);  // starts the handshake
  }

  void OnTransportData(absl::string_view data) override {
    parser_.Feed(data);
    http::HttpRequest response;
    while (true) {
      switch (parser_.Next(&response)) {
        case http::HttpRequestParser::Result::kNeedMore:
          return;
        case http::HttpRequestParser::Result::kError:
          Finish(absl::InvalidArgumentError(
              absl::StrCat("malformed response: ", parser_.error_reason())));
          return;
        case http::HttpRequestParser::Result::kRequest:
          if (response.status < 200) continue;  // interim (1xx)
          Finish(std::move(response));
          return;
      }
    }
  }

  void OnTransportClosed(absl::Status reason) override {
    transport_ = nullptr;  // it frees itself
    Finish(absl::UnavailableError(
        reason.ok() ? std::string("the HTTP server closed before answering")
                    : absl::StrCat("HTTP server: ", reason.message())));
  }

  void Finish(absl::StatusOr<http::HttpRequest> result) {
    if (finished_) return;
    finished_ = true;
    alive_.reset();
    if (timer_ != 0) shard_->timers().Cancel(timer_);
    timer_ = 0;
    if (transport_ != nullptr) {
      transport_->SetHandler(nullptr);
      transport_->Abort();  // "Connection: close": nothing more to read
      transport_ = nullptr;
    }
    HttpsDone done = std::move(done_);
    // Deleted before `done` runs: it may start the next request at once, and
    // nothing of this one is touched after.
    delete this;
    done(std::move(result));
  }

  engine::Shard* shard_;
  const tls::TlsContext* tls_;
  std::string host_;
  std::string request_;
  HttpsDone done_;
  http::HttpRequestParser parser_;
  std::vector<engine::ResolvedAddress> addresses_;
  size_t next_address_ = 0;
  std::string connect_error_ = "no address";
  engine::Transport* transport_ = nullptr;  // the socket, or TLS over it
  TimerWheel::TimerId timer_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool finished_ = false;
};

}  // namespace

void StartHttpsRequest(engine::Shard* shard, const tls::TlsContext* tls,
                       const HttpsTarget& target, std::string request,
                       int64_t timeout_ms, HttpsDone done) {
  auto* r = new HttpsRequest(shard, tls, target.host, std::move(request),
                             std::move(done));
  r->Start(target, timeout_ms);
}

}  // namespace pimap::outband_http
