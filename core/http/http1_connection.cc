// The HTTP/1.1 server connection over an engine::Transport
// (http1_connection.h).
#include "core/http/http1_connection.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/http/response.h"

namespace pimap::http {

namespace {

constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

Http1Connection::Http1Connection(engine::Transport* transport,
                                 TimerWheel* timers, ServerHandler* handler,
                                 const ServerConnectionConfig* config)
    : transport_(transport),
      timers_(timers),
      handler_(handler),
      config_(config),
      parser_(config->max_body_bytes) {
  parser_.set_stream_chunked_bodies(config_->stream_chunked_bodies);
  last_exchange_ms_ = MonotonicNowMs();
  ArmTimer(config_->idle_timeout_ms);
}

Http1Connection::~Http1Connection() {
  if (timer_ != 0) timers_->Cancel(timer_);
}

void Http1Connection::Start() {
  Busy busy(this);
  if (transport_ == nullptr) return;
  transport_->SetHandler(this);
  if (state_ == State::kReading) {
    ReadRequests();
  } else if (state_ == State::kServing && parser_.in_streamed_body()) {
    PumpBody();
  }
}

// Out of line: the last Busy to go tells the handler and frees the
// connection, after every call into it has unwound.
Http1Connection::Busy::~Busy() {
  if (--c_->busy_ != 0 || !c_->closed_) return;
  if (!c_->released_) c_->handler_->OnClosed(*c_, c_->output_lost_);
  delete c_;
}

void Http1Connection::Closed(bool output_lost) {
  state_ = State::kClosing;
  closed_ = true;
  output_lost_ = output_lost;
  if (timer_ != 0) timers_->Cancel(timer_);
  timer_ = 0;
}

void Http1Connection::Close() {
  if (state_ == State::kClosing) return;
  Busy busy(this);
  if (transport_ != nullptr) {
    transport_->Close();  // flushes what is queued, then closes; no callbacks
    transport_ = nullptr;
  }
  Closed(false);
}

void Http1Connection::Abort() {
  if (state_ == State::kClosing) return;
  Busy busy(this);
  if (transport_ != nullptr) {
    transport_->Abort();
    transport_ = nullptr;
  }
  Closed(true);
}

void Http1Connection::OnTransportClosed(absl::Status) {
  Busy busy(this);
  transport_ = nullptr;
  Closed(true);
}

// ---- Moving -----------------------------------------------------------------

void Http1Connection::Suspend() {
  if (state_ == State::kClosing) return;
  state_ = State::kMoving;
  if (timer_ != 0) timers_->Cancel(timer_);
  timer_ = 0;
}

Http1Connection::Carried Http1Connection::Release() {
  Busy busy(this);
  Carried carried{std::move(parser_), keep_alive_};
  transport_ = nullptr;
  released_ = true;
  Closed(false);
  return carried;
}

void Http1Connection::Resume(Carried carried) {
  parser_ = std::move(carried.parser);
  keep_alive_ = carried.keep_alive;
}

void Http1Connection::Serve(HttpRequest request) {
  Busy busy(this);
  if (state_ == State::kReading) Dispatch(std::move(request));
}

void Http1Connection::ResumeResponse() {
  if (state_ != State::kReading) return;
  state_ = State::kServing;
  head_only_ = false;
  chunked_ = true;
}

// ---- Requests ---------------------------------------------------------------

void Http1Connection::OnTransportData(absl::string_view data) {
  Busy busy(this);
  if (state_ == State::kClosing) return;
  handler_->OnBytes(*this, data);
  if (state_ == State::kClosing) return;  // taken over
  parser_.Feed(data);
  if (state_ == State::kMoving) return;  // travels with the connection
  if (config_->request_timeout_ms > 0 && request_started_ms_ == 0) {
    // A request starts: its deadline runs from its first byte.
    request_started_ms_ = MonotonicNowMs();
    if (state_ == State::kReading) ArmTimer(config_->request_timeout_ms);
  }
  if (state_ == State::kReading) {
    ReadRequests();
  } else if (parser_.in_streamed_body()) {
    PumpBody();
  } else if (parser_.buffered() > config_->max_read_ahead &&
             transport_ != nullptr) {
    // Pipelining is allowed, unbounded buffering is not.
    transport_->SetReading(false);
    reading_off_ = true;
  }
}

void Http1Connection::ReadRequests() {
  // A request answered at once ends its exchange inside OnRequest(), which
  // asks for the next request: the loop below takes it, rather than one more
  // stack frame per pipelined request.
  if (in_read_requests_) return;
  Busy busy(this);
  in_read_requests_ = true;
  struct Reset {
    bool* flag;
    ~Reset() { *flag = false; }
  } reset{&in_read_requests_};
  while (state_ == State::kReading && transport_ != nullptr) {
    // Answers queue up only while the peer reads them: past the bound, the
    // requests already received wait in the parser and nothing more is read
    // until the output drains (OnTransportDrained).
    if (transport_->PendingOutput() > config_->max_pending_output) {
      if (!output_paused_) transport_->SetReading(false);
      output_paused_ = true;
      return;
    }
    HttpRequest request;
    switch (parser_.Next(&request)) {
      case HttpRequestParser::Result::kNeedMore:
        if (parser_.buffered() == 0) request_started_ms_ = 0;
        // The client waits for this before it sends the body (curl does for
        // large or chunked bodies).
        if (parser_.ContinueDue()) transport_->Write(kContinue);
        if (reading_off_) {
          reading_off_ = false;
          transport_->SetReading(true);
        }
        return;
      case HttpRequestParser::Result::kError: {
        // The parser cannot tell where a next request would start: answer
        // and close.
        const int status = parser_.error_status();
        const std::string reason = parser_.error_reason();
        handler_->OnRequestError(*this, status, reason, true);
        if (transport_ != nullptr) {
          transport_->Write(WholeResponse(status, "", "text/plain",
                                          absl::StrCat(reason, "\n"), true));
        }
        Close();
        return;
      }
      case HttpRequestParser::Result::kRequest: {
        const int64_t now = MonotonicNowMs();
        last_exchange_ms_ = now;
        if (config_->request_timeout_ms > 0) {
          // The next request's clock starts with its first byte (maybe here).
          request_started_ms_ = parser_.buffered() > 0 ? now : 0;
        }
        if (request.streaming && parser_.ContinueDue()) {
          transport_->Write(kContinue);
        }
        Dispatch(std::move(request));
        break;
      }
    }
  }
}

void Http1Connection::Dispatch(HttpRequest request) {
  keep_alive_ = request.keep_alive;
  head_only_ = request.method == "HEAD";
  state_ = State::kServing;
  handler_->OnRequest(*this, std::move(request));
  if (state_ == State::kServing && parser_.in_streamed_body()) PumpBody();
}

// Decoded chunks of a streamed body go to the handler as they arrive; it
// pauses reading (SetReading) while it has a backlog.
void Http1Connection::PumpBody() {
  Busy busy(this);
  while (state_ == State::kServing && parser_.in_streamed_body()) {
    std::string data;
    const HttpRequestParser::BodyResult r = parser_.NextBody(&data);
    if (r == HttpRequestParser::BodyResult::kError) {
      // The response is open already: no status can be said any more.
      handler_->OnRequestError(*this, parser_.error_status(),
                               parser_.error_reason(), false);
      Close();
      return;
    }
    const bool end = r == HttpRequestParser::BodyResult::kEnd;
    if (!data.empty() || end) handler_->OnRequestBody(*this, data, end);
    if (r != HttpRequestParser::BodyResult::kData) break;
  }
}

void Http1Connection::EndExchange() {
  head_only_ = false;
  chunked_ = false;
  coded_.reset();
  // A streamed request body not ended yet cannot be told from a next
  // request: the connection closes after the response.
  if (parser_.in_streamed_body()) keep_alive_ = false;
  state_ = State::kReading;
  last_exchange_ms_ = MonotonicNowMs();
  if (!keep_alive_) {
    Close();
    return;
  }
  if (config_->request_timeout_ms > 0) {
    ArmTimer(request_started_ms_ != 0 ? config_->request_timeout_ms
                                      : config_->idle_timeout_ms);
  }
  ReadRequests();  // a pipelined request may be waiting
}

// ---- Responses --------------------------------------------------------------

void Http1Connection::Respond(int status, absl::string_view extra_headers,
                              absl::string_view content_type,
                              absl::string_view body) {
  if (state_ != State::kServing) return;
  Busy busy(this);
  if (parser_.in_streamed_body()) keep_alive_ = false;
  if (transport_ != nullptr) {
    std::string out =
        WholeResponse(status, extra_headers, content_type, body, !keep_alive_);
    // HEAD: the same headers (Content-Length of the GET body), no body.
    if (head_only_) out.resize(out.find("\r\n\r\n") + 4);
    transport_->Write(std::move(out));
  }
  handler_->OnResponseComplete(*this);
  if (state_ == State::kServing) EndExchange();
}

void Http1Connection::WriteHead(int status, absl::string_view headers,
                                int64_t length, ContentCoding coding) {
  if (state_ != State::kServing || transport_ == nullptr) return;
  Busy busy(this);
  coded_.reset();
  if (coding == ContentCoding::kIdentity) {
    WriteHeadNow(status, headers, length);
    return;
  }
  coded_ = std::make_unique<Coded>(coding, config_->compressor);
  std::string coded =
      absl::StrCat(headers, "Content-Encoding: ", ContentCodingName(coding),
                   "\r\nVary: Accept-Encoding\r\n");
  if (length >= 0) {
    coded_->holding = true;
    coded_->held_status = status;
    coded_->held_head = std::move(coded);
    return;
  }
  WriteHeadNow(status, coded, -1);
}

void Http1Connection::WriteHeadNow(int status, absl::string_view headers,
                                   int64_t length) {
  std::string out;
  AppendStatusLine(&out, status);
  out.append(headers.data(), headers.size());
  chunked_ = length < 0 && !head_only_;
  if (length < 0) {
    out += "Transfer-Encoding: chunked\r\n";
  } else {
    absl::StrAppend(&out, "Content-Length: ", length, "\r\n");
  }
  if (!keep_alive_) out += "Connection: close\r\n";
  out += "\r\n";
  transport_->Write(std::move(out));
}

void Http1Connection::WriteBody(absl::string_view plain) {
  if (state_ != State::kServing || transport_ == nullptr || head_only_) return;
  Busy busy(this);
  std::string coded;
  absl::string_view bytes = plain;
  if (coded_ != nullptr) {
    // Each burst is decodable at once (a long poll's event is not held).
    coded = coded_->encoder.Encode(plain);
    if (coded_->holding) {
      coded_->held_body += coded;
      return;
    }
    bytes = coded;
  }
  if (bytes.empty()) return;
  if (chunked_) {
    std::string chunk;
    AppendChunk(&chunk, bytes);
    transport_->Write(std::move(chunk));
  } else {
    transport_->Write(bytes);
  }
}

void Http1Connection::EndResponse() {
  if (state_ != State::kServing) return;
  Busy busy(this);
  if (transport_ != nullptr && coded_ != nullptr) {
    std::string tail = coded_->encoder.Finish();
    if (coded_->holding) {
      std::string& body = coded_->held_body;
      body += tail;
      WriteHeadNow(coded_->held_status, coded_->held_head,
                   static_cast<int64_t>(body.size()));
      if (!head_only_) transport_->Write(std::move(body));
    } else if (!tail.empty() && chunked_) {
      std::string chunk;
      AppendChunk(&chunk, tail);
      transport_->Write(std::move(chunk));
    }
  }
  if (chunked_ && transport_ != nullptr) transport_->Write(kLastChunk);
  handler_->OnResponseComplete(*this);
  if (state_ == State::kServing) EndExchange();
}

size_t Http1Connection::PendingOutput() const {
  return transport_ == nullptr ? 0 : transport_->PendingOutput();
}

void Http1Connection::SetReading(bool on) {
  if (transport_ != nullptr && state_ == State::kServing) {
    transport_->SetReading(on);
    reading_off_ = !on;
  }
}

bool Http1Connection::is_tls() const {
  return transport_ != nullptr && transport_->is_tls();
}

void Http1Connection::OnTransportDrained() {
  Busy busy(this);
  if (state_ == State::kClosing) return;
  handler_->OnDrained(*this);
  if (!output_paused_ || transport_ == nullptr) return;
  output_paused_ = false;
  transport_->SetReading(true);
  ReadRequests();  // pipelined requests held back while output was full
}

// ---- Deadlines --------------------------------------------------------------

void Http1Connection::ArmTimer(int64_t delay_ms) {
  if (timer_ != 0) timers_->Cancel(timer_);
  timer_ = timers_->Schedule(std::max<int64_t>(delay_ms, 1), [this] {
    timer_ = 0;
    OnTimer();
  });
}

// One timer per connection, re-armed for what is left: the request deadline
// while a request is being read (request_timeout_ms), else the idle deadline
// since the last exchange. A request being served has its handler's limits.
void Http1Connection::OnTimer() {
  Busy busy(this);
  if (state_ == State::kClosing) return;
  const int64_t now = MonotonicNowMs();
  if (state_ != State::kReading) {
    ArmTimer(config_->idle_timeout_ms);
    return;
  }
  if (config_->request_timeout_ms > 0 && request_started_ms_ != 0) {
    const int64_t left =
        request_started_ms_ + config_->request_timeout_ms - now;
    if (left > 0) {
      ArmTimer(left);
      return;
    }
    static constexpr absl::string_view kLate = "Request not received in time";
    handler_->OnRequestError(*this, 408, kLate, true);
    if (transport_ != nullptr) {
      transport_->Write(WholeResponse(408, "", "text/plain",
                                      absl::StrCat(kLate, "\n"), true));
    }
    Close();
    return;
  }
  const int64_t left = last_exchange_ms_ + config_->idle_timeout_ms - now;
  if (left <= 0) {
    // Closed without an answer when idle between requests (RFC 9112 §9.5);
    // a half-sent request (without a request deadline) is dropped the same
    // way.
    Close();
    return;
  }
  ArmTimer(config_->request_timeout_ms > 0
               ? std::min(left, config_->request_timeout_ms)
               : left);
}

}  // namespace pimap::http
