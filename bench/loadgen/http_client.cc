// pimap-bench's HTTP/1.1 client for the P-IMAP HTTP binding (see
// http_client.h).
#include "bench/loadgen/http_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace pimap::bench {

namespace {

constexpr size_t kMaxHead = 16 * 1024;
constexpr size_t kMaxLine = 1024;
constexpr int64_t kMaxChunk = int64_t{64} << 20;
constexpr int64_t kMaxLength = int64_t{1} << 30;
// Body bytes are handed on at line ends (two connections may deliver at once);
// a longer run without one is handed on as it is.
constexpr size_t kMaxPartial = 64 * 1024;
// Of a non-200 response, the start of the body goes into the error.
constexpr size_t kMaxErrorBody = 200;

absl::string_view StripEol(absl::string_view line) {
  absl::ConsumeSuffix(&line, "\n");
  absl::ConsumeSuffix(&line, "\r");
  return line;
}

}  // namespace

std::string BuildPost(absl::string_view host, absl::string_view path,
                      absl::string_view cookie, absl::string_view body) {
  std::string out = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: ", host,
                                 "\r\nContent-Type: application/vnd.pimap\r\n");
  if (!cookie.empty()) absl::StrAppend(&out, "Cookie: pimap=", cookie, "\r\n");
  absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n\r\n", body);
  return out;
}

// ---------------------------------------------------------------- reader

bool HttpResponseReader::Fail(std::string error) {
  error_ = std::move(error);
  return false;
}

bool HttpResponseReader::TakeLine(absl::string_view* data, size_t max,
                                  const char* what) {
  const size_t nl = data->find('\n');
  const size_t take = nl == absl::string_view::npos ? data->size() : nl + 1;
  if (line_.size() + take > max) {
    error_ = absl::StrCat(what, " longer than ", max, " bytes");
    return false;
  }
  line_.append(data->data(), take);
  data->remove_prefix(take);
  return nl != absl::string_view::npos;
}

bool HttpResponseReader::HeadLine(absl::string_view line) {
  if (head_.status == 0) {  // the status line
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "HTTP/1.1 ") &&
        !absl::ConsumePrefix(&rest, "HTTP/1.0 ")) {
      return Fail(absl::StrCat("bad status line \"",
                               absl::CHexEscape(line.substr(0, 80)), "\""));
    }
    int status = 0;
    if (rest.size() < 3 || !absl::SimpleAtoi(rest.substr(0, 3), &status) ||
        status < 100 || status > 599) {
      return Fail(
          absl::StrCat("bad status in \"", absl::CHexEscape(line), "\""));
    }
    head_.status = status;
    head_.reason = std::string(absl::StripAsciiWhitespace(rest.substr(3)));
    return true;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return Fail(absl::StrCat("bad header line \"",
                             absl::CHexEscape(line.substr(0, 80)), "\""));
  }
  const absl::string_view name = line.substr(0, colon);
  const absl::string_view value =
      absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (absl::EqualsIgnoreCase(name, "Content-Length")) {
    if (!absl::SimpleAtoi(value, &head_.content_length) ||
        head_.content_length < 0 || head_.content_length > kMaxLength) {
      return Fail(
          absl::StrCat("bad Content-Length \"", absl::CHexEscape(value), "\""));
    }
  } else if (absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
    head_.chunked = absl::EndsWithIgnoreCase(value, "chunked");
    if (!head_.chunked) {
      return Fail(absl::StrCat("unsupported Transfer-Encoding ", value));
    }
  } else if (absl::EqualsIgnoreCase(name, "Connection")) {
    head_.close = absl::StrContains(absl::AsciiStrToLower(value), "close");
  } else if (absl::EqualsIgnoreCase(name, "Set-Cookie")) {
    absl::string_view v = value;
    if (absl::ConsumePrefix(&v, cookie_name_) && absl::ConsumePrefix(&v, "=")) {
      head_.has_cookie = true;
      head_.cookie = std::string(v.substr(0, v.find(';')));
    }
  }
  return true;
}

bool HttpResponseReader::Feed(absl::string_view data, Visitor& visitor) {
  while (!data.empty()) {
    switch (state_) {
      case State::kHead: {
        const size_t before = data.size();
        const bool complete = TakeLine(&data, kMaxHead, "response head line");
        head_bytes_ += before - data.size();
        if (head_bytes_ > kMaxHead) {
          return Fail(absl::StrCat("response head longer than ", kMaxHead));
        }
        if (!error_.empty()) return false;
        if (!complete) return true;
        const std::string line = std::string(StripEol(line_));
        line_.clear();
        if (!line.empty()) {
          if (!HeadLine(line)) return false;
          break;
        }
        if (head_.status == 0)
          return Fail("empty line instead of a status line");
        const HttpResponseHead head = std::exchange(head_, HttpResponseHead());
        head_bytes_ = 0;
        if (head.status < 200) break;  // 100 Continue and the like
        if (!visitor.OnHead(head)) return false;
        if (head.chunked) {
          state_ = State::kChunkSize;
        } else if (head.content_length > 0) {
          left_ = head.content_length;
          state_ = State::kLength;
        } else if (head.content_length == 0) {
          if (!visitor.OnEnd()) return false;
        } else {
          return Fail("response without Content-Length or chunked body");
        }
        break;
      }
      case State::kLength:
      case State::kChunkData: {
        const size_t n =
            static_cast<size_t>(std::min<int64_t>(left_, data.size()));
        absl::string_view part = data.substr(0, n);
        data.remove_prefix(n);
        left_ -= static_cast<int64_t>(n);
        if (!visitor.OnBody(part)) return false;
        if (left_ > 0) break;
        if (state_ == State::kChunkData) {
          state_ = State::kChunkEnd;
        } else {
          state_ = State::kHead;
          if (!visitor.OnEnd()) return false;
        }
        break;
      }
      case State::kChunkSize: {
        if (!TakeLine(&data, kMaxLine, "chunk-size line"))
          return error_.empty();
        absl::string_view size = StripEol(line_);
        size = absl::StripAsciiWhitespace(size.substr(0, size.find(';')));
        uint64_t n = 0;
        if (size.empty() || size.size() > 8 || !absl::SimpleHexAtoi(size, &n) ||
            static_cast<int64_t>(n) > kMaxChunk) {
          return Fail(absl::StrCat("bad chunk size \"",
                                   absl::CHexEscape(StripEol(line_)), "\""));
        }
        line_.clear();
        left_ = static_cast<int64_t>(n);
        state_ = n == 0 ? State::kTrailer : State::kChunkData;
        break;
      }
      case State::kChunkEnd: {
        const size_t n = std::min<size_t>(2 - line_.size(), data.size());
        line_.append(data.data(), n);
        data.remove_prefix(n);
        if (line_.size() < 2) break;  // the rest in the next read
        if (line_ != "\r\n") return Fail("chunk data not followed by CRLF");
        line_.clear();
        state_ = State::kChunkSize;
        break;
      }
      case State::kTrailer: {
        const size_t before = data.size();
        const bool complete = TakeLine(&data, kMaxLine, "trailer line");
        head_bytes_ += before - data.size();
        if (head_bytes_ > kMaxHead) return Fail("trailer section too long");
        if (!complete) return error_.empty();
        const bool last = StripEol(line_).empty();
        line_.clear();
        if (last) {
          head_bytes_ = 0;
          state_ = State::kHead;
          if (!visitor.OnEnd()) return false;
        }
        break;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------- transport

// One connection of the transport, with its requests in flight.
class HttpTransport::Link final : public engine::TransportHandler,
                                  public ConnectClient,
                                  private HttpResponseReader::Visitor {
 public:
  explicit Link(HttpTransport* owner) : owner_(owner), reader_("pimap") {}

  bool usable() const { return t_ != nullptr || dialing_; }
  // A long poll holds the connection (requests after it would wait for it)
  // until its IDLE is answered.
  bool blocked() const {
    for (const std::string& idle_tag : pending_)
      if (!idle_tag.empty()) return true;
    return false;
  }
  bool dialing() const { return dialing_; }
  engine::Transport* transport() const { return t_; }

  void Adopt(engine::Transport* t) {
    t_ = t;
    reader_ = HttpResponseReader("pimap");
    t_->SetHandler(this);
    if (!queued_.empty()) t_->Write(std::exchange(queued_, std::string()));
  }
  void Dial() {
    dialing_ = true;
    owner_->dialer_->Dial(this);
  }
  void Send(std::string request, std::string idle_tag) {
    pending_.push_back(std::move(idle_tag));
    if (t_ != nullptr) {
      t_->Write(std::move(request));
    } else {
      queued_ += request;
    }
  }
  void Shut(bool abort) {
    if (engine::Transport* t = std::exchange(t_, nullptr)) {
      if (abort) {
        t->Abort();
      } else {
        t->Close();
      }
    }
  }

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override {
    Guard guard(owner_);
    if (owner_->closed_) return;
    if (!reader_.Feed(data, *this) && !owner_->closed_) {
      owner_->Fatal(absl::InternalError(
          absl::StrCat("HTTP: malformed response: ", reader_.error())));
    }
  }
  void OnTransportClosed(absl::Status reason) override {
    Guard guard(owner_);
    t_ = nullptr;
    if (owner_->closed_) return;
    if (!pending_.empty() || reader_.in_response()) {
      owner_->Fatal(reason.ok() ? absl::UnavailableError(
                                      "HTTP: connection closed by the server "
                                      "with a response open")
                                : reason);
      return;
    }
    // An idle kept-alive connection the server closed: the next request
    // opens another.
    partial_.clear();
  }

  // ConnectClient
  void OnConnected(engine::Socket* socket) override {
    Guard guard(owner_);
    dialing_ = false;
    if (owner_->closed_) {
      socket->Abort();
      return;
    }
    engine::Transport* t = owner_->dialer_->Wrap(socket);
    if (t == nullptr) {
      owner_->Fatal(absl::InternalError("TLS: SSL_new failed"));
      return;
    }
    Adopt(t);
  }
  void OnConnectFailed(int err, const char* what) override {
    Guard guard(owner_);
    dialing_ = false;
    if (owner_->closed_) return;
    owner_->Fatal(absl::UnavailableError(absl::StrCat(
        "HTTP: second connection: ", ConnectErrorKind(err), " (", what, ")")));
  }

 private:
  // HttpResponseReader::Visitor
  bool OnHead(const HttpResponseHead& head) override {
    if (pending_.empty()) {
      owner_->Fatal(absl::InternalError("HTTP: a response without a request"));
      return false;
    }
    status_ = head.status;
    reason_ = head.reason;
    error_body_.clear();
    if (head.has_cookie) owner_->cookie_ = head.cookie;
    return true;
  }
  bool OnBody(absl::string_view bytes) override {
    if (status_ != 200) {
      const size_t room =
          kMaxErrorBody - std::min(kMaxErrorBody, error_body_.size());
      error_body_.append(bytes.data(), std::min(bytes.size(), room));
      return true;
    }
    partial_.append(bytes.data(), bytes.size());
    size_t end = partial_.rfind('\n');
    if (end == std::string::npos) {
      if (partial_.size() < kMaxPartial) return true;
      end = partial_.size() - 1;
    }
    std::string out = partial_.substr(0, end + 1);
    partial_.erase(0, end + 1);
    // The IDLE's answer ends the long poll: the connection takes requests
    // again (pipelined behind the response's last chunk).
    std::string& idle_tag = pending_.front();
    if (!idle_tag.empty() && (absl::StartsWith(out, idle_tag + " ") ||
                              absl::StrContains(out, "\n" + idle_tag + " "))) {
      idle_tag.clear();
    }
    owner_->handler_->OnTransportData(out);
    return !owner_->closed_;
  }
  bool OnEnd() override {
    pending_.pop_front();
    if (status_ != 200) {
      owner_->Fatal(absl::InternalError(absl::StrCat(
          "HTTP ", status_, " ", reason_, ": ",
          absl::CHexEscape(absl::StripAsciiWhitespace(error_body_)))));
      return false;
    }
    if (!partial_.empty()) {
      owner_->handler_->OnTransportData(std::exchange(partial_, std::string()));
    }
    return !owner_->closed_;
  }

  HttpTransport* owner_;
  engine::Transport* t_ = nullptr;
  bool dialing_ = false;
  HttpResponseReader reader_;
  std::string queued_;  // requests written while dialing
  // Requests in flight, each with the tag of its IDLE if it is a long poll.
  std::deque<std::string> pending_;
  std::string partial_;  // body bytes after the last line end
  int status_ = 0;
  std::string reason_;
  std::string error_body_;
};

HttpTransport::HttpTransport(HttpDialer* dialer, engine::Transport* first,
                             const HttpTarget* target)
    : dialer_(dialer), target_(target), first_(first), tls_(first->is_tls()) {
  links_[0] = std::make_unique<Link>(this);
  links_[1] = std::make_unique<Link>(this);
}

HttpTransport::~HttpTransport() = default;

void HttpTransport::SetHandler(engine::TransportHandler* handler) {
  handler_ = handler;
  if (engine::Transport* first = std::exchange(first_, nullptr)) {
    Guard guard(this);
    links_[0]->Adopt(first);
  }
}

void HttpTransport::Write(absl::string_view bytes) {
  if (closed_) return;
  Guard guard(this);
  // A batch ending in "tag IDLE" is a long poll: it holds its connection until
  // the IDLE's tagged answer.
  std::string idle_tag;
  absl::string_view rest = bytes;
  if (absl::ConsumeSuffix(&rest, " IDLE\r\n") ||
      absl::ConsumeSuffix(&rest, " idle\r\n")) {
    idle_tag = std::string(rest.substr(rest.rfind('\n') + 1));  // npos + 1 = 0
  }
  std::string request = BuildPost(target_->host, target_->path, cookie_, bytes);
  Link* pick = nullptr;
  for (auto& link : links_) {
    if (link->usable() && !link->blocked()) {
      pick = link.get();
      break;
    }
  }
  if (pick == nullptr) {
    for (auto& link : links_) {
      if (!link->usable()) {
        pick = link.get();
        pick->Dial();
        break;
      }
    }
  }
  if (pick == nullptr) pick = links_[1].get();  // both long-polling: queue
  if (closed_) return;                          // the dial failed at once
  pick->Send(std::move(request), std::move(idle_tag));
}

size_t HttpTransport::PendingOutput() const {
  size_t n = 0;
  for (auto& link : links_) {
    if (link->transport() != nullptr) n += link->transport()->PendingOutput();
  }
  return n;
}

void HttpTransport::SetReading(bool on) {
  for (auto& link : links_) {
    if (link->transport() != nullptr) link->transport()->SetReading(on);
  }
}

void HttpTransport::Shut(bool abort) {
  if (closed_) return;
  Guard guard(this);
  closed_ = true;
  if (engine::Transport* first = std::exchange(first_, nullptr)) {
    first->Abort();
  }
  for (auto& link : links_) link->Shut(abort);
}

void HttpTransport::Fatal(absl::Status reason) {
  if (closed_) return;
  Guard guard(this);
  Shut(true);
  if (handler_ != nullptr) handler_->OnTransportClosed(std::move(reason));
}

void HttpTransport::MaybeDelete() {
  if (!closed_ || depth_ > 0) return;
  for (auto& link : links_) {
    if (link->dialing()) return;  // deleted when the connect completes
  }
  delete this;
}

}  // namespace pimap::bench
