// One HTTP/2 stream of an Http2Connection (http2_connection.h): the request
// it assembles, and the ResponseSink the session writes its response to,
// from which nghttp2 pulls DATA frames. Internal to http2_connection.cc.
//
// Hazard: the session calls these methods from inside its own calls; they
// never call back into the session and never free anything under it (a
// stream that must be dropped is dropped from the event loop).
#ifndef PIMAP_BINDINGS_HTTP_HTTP2_STREAM_H_
#define PIMAP_BINDINGS_HTTP_HTTP2_STREAM_H_

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "bindings/http/http2_connection.h"
#include "core/base/log.h"
#include "core/http/content_coding.h"
#include "core/http/request_parser.h"

namespace pimap::http_binding {

// Response data of one stream that the client does not take (its flow
// control window stays shut), at most; past it the stream is reset.
inline constexpr size_t kMaxStreamOutput = 8 << 20;

class Http2Connection::Stream final : public ResponseSink {
 public:
  enum class Phase : uint8_t { kReceiving, kReady, kServing, kResponded };

  Stream(Http2Connection* c, int32_t id)
      : c_(c), id_(id), started_ms_(MonotonicNowMs()) {}

  // ResponseSink: the session's response on this stream.
  void WriteHead(absl::string_view extra_headers, int64_t length) override {
    Busy busy(c_);
    SinkCall call(c_);
    if (dead_) return;
    if (coding_ == http::ContentCoding::kIdentity) {
      c_->SubmitHead(*this, 200, "application/vnd.pimap", extra_headers,
                     length);
    } else {
      // The coded length is not known yet: DATA frames end the body.
      encoder_ = http::ResponseEncoder(coding_, &c_->server_->compressor());
      c_->SubmitHead(*this, 200, "application/vnd.pimap",
                     absl::StrCat(extra_headers, "Content-Encoding: ",
                                  http::ContentCodingName(coding_),
                                  "\r\nVary: Accept-Encoding\r\n"),
                     -1);
    }
    c_->Flush();
  }
  void WriteBody(absl::string_view bytes) override {
    Busy busy(c_);
    SinkCall call(c_);
    if (dead_) return;
    if (coding_ == http::ContentCoding::kIdentity) {
      out_.append(bytes.data(), bytes.size());
    } else {
      out_ += encoder_.Encode(bytes);  // decodable at once, burst by burst
    }
    if (out_.size() - out_pos_ > kMaxStreamOutput) {
      // The client does not take this stream's data (flow control): drop
      // the stream, from the event loop (the session is writing now).
      PIMAP_LOG(INFO).Conn(c_->client_)
          << "HTTP/2 client does not read stream " << id_;
      dead_ = true;
      out_.clear();
      out_pos_ = 0;
      c_->DropStreamLater(id_);
      return;
    }
    Resume();
    c_->Flush();
  }
  void EndBody() override {
    Busy busy(c_);
    SinkCall call(c_);
    if (dead_) {
      session_ = nullptr;
      return;
    }
    if (coding_ != http::ContentCoding::kIdentity) out_ += encoder_.Finish();
    session_ = nullptr;
    phase_ = Phase::kResponded;
    eof_ = true;
    Resume();
    c_->Flush();
  }
  size_t PendingOutput() const override {
    return out_.size() - out_pos_ +
           (c_->transport_ != nullptr ? c_->transport_->PendingOutput() : 0);
  }
  const ClientAddress& client_address() const override { return c_->client_; }
  void OnAuthenticated() override { c_->LeavePreAuth(); }

  // nghttp2 pulls the body from here.
  static ssize_t Read(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                      uint32_t* flags, nghttp2_data_source* source, void*) {
    Stream* s = static_cast<Stream*>(source->ptr);
    const size_t available = s->out_.size() - s->out_pos_;
    if (available == 0) {
      if (s->eof_) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
      }
      s->deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    const size_t n = std::min(available, length);
    std::memcpy(buf, s->out_.data() + s->out_pos_, n);
    s->out_pos_ += n;
    if (s->out_pos_ == s->out_.size()) {
      s->out_.clear();
      s->out_pos_ = 0;
      if (s->eof_) *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return static_cast<ssize_t>(n);
  }

  void Resume() {
    if (deferred_ && c_->h2_ != nullptr) {
      deferred_ = false;
      nghttp2_session_resume_data(c_->h2_, id_);
    }
  }

  Http2Connection* c_;
  const int32_t id_;
  const int64_t started_ms_;
  http::HttpRequest request_;
  size_t header_bytes_ = 0;
  size_t header_fields_ = 0;
  int reject_status_ = 0;  // answered with this instead of being served
  Phase phase_ = Phase::kReceiving;
  HttpSession* session_ = nullptr;  // while it writes the response
  http::ContentCoding coding_ = http::ContentCoding::kIdentity;
  http::ResponseEncoder encoder_{http::ContentCoding::kIdentity, nullptr};
  std::string out_;
  size_t out_pos_ = 0;
  bool eof_ = false;
  bool deferred_ = false;
  bool head_sent_ = false;
  bool dead_ = false;  // dropped: every call of the session's is ignored
};

}  // namespace pimap::http_binding

#endif  // PIMAP_BINDINGS_HTTP_HTTP2_STREAM_H_
