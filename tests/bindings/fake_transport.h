// Test doubles for Transport decorators (bindings/tls, bindings/compress): a
// fake inner transport the test feeds and inspects, and a handler that records
// what the decorator delivers.
#ifndef PIMAP_TESTS_BINDINGS_FAKE_TRANSPORT_H_
#define PIMAP_TESTS_BINDINGS_FAKE_TRANSPORT_H_

#include <cstddef>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/engine/transport.h"
#include "gtest/gtest.h"

namespace pimap::testing {

// The transport under a decorator (TLS, DEFLATE): keeps what is written, lets
// the test deliver bytes, and records the calls TLS makes on it. It never frees
// itself (the test owns it), so it stays inspectable after the TlsTransport is
// gone.
class FakeInner final : public engine::Transport {
 public:
  void SetHandler(engine::TransportHandler* handler) override {
    handler_ = handler;
  }
  void Write(absl::string_view bytes) override {
    EXPECT_TRUE(live()) << "write after close";
    written_.append(bytes.data(), bytes.size());
  }
  void Write(std::string&& bytes) override { Write(absl::string_view(bytes)); }
  using Transport::Write;
  size_t PendingOutput() const override { return pending_output_; }
  void SetReading(bool on) override { reading_ = on; }
  void Close() override {
    EXPECT_TRUE(live());
    closed_ = true;
    written_at_close_ = written_.size();
  }
  void Abort() override {
    EXPECT_TRUE(live());
    aborted_ = true;
  }

  // One receive completing with `bytes`.
  void Feed(absl::string_view bytes) {
    if (!live() || handler_ == nullptr) {
      ADD_FAILURE() << "feeding a transport that cannot receive";
      return;
    }
    handler_->OnTransportData(bytes);
  }
  // The socket left this shard: it delivers nothing more to its handler.
  void Detach() {
    handler_ = nullptr;
    detached_ = true;
  }
  std::string TakeWritten() { return std::exchange(written_, std::string()); }

  bool live() const { return !closed_ && !aborted_ && !detached_; }
  engine::TransportHandler* handler() const { return handler_; }
  const std::string& written() const { return written_; }
  bool reading() const { return reading_; }
  bool closed() const { return closed_; }
  bool aborted() const { return aborted_; }
  // Size of written() when Close() came: nothing may be written after it.
  size_t written_at_close() const { return written_at_close_; }
  void set_pending_output(size_t n) { pending_output_ = n; }

 private:
  engine::TransportHandler* handler_ = nullptr;
  std::string written_;
  size_t pending_output_ = 0;
  size_t written_at_close_ = 0;
  bool reading_ = true;
  bool closed_ = false;
  bool aborted_ = false;
  bool detached_ = false;
};

// The protocol side: collects plaintext and the close reason.
class RecordingHandler final : public engine::TransportHandler {
 public:
  void OnTransportData(absl::string_view data) override {
    EXPECT_FALSE(closed_) << "data after OnTransportClosed";
    data_.append(data.data(), data.size());
    ++data_calls_;
    if (on_data_) on_data_(data);
  }
  void OnTransportDrained() override { ++drained_; }
  void OnTransportClosed(absl::Status reason) override {
    EXPECT_FALSE(closed_) << "closed twice";
    closed_ = true;
    reason_ = std::move(reason);
  }

  // Runs inside OnTransportData, after the data is recorded.
  void set_on_data(std::function<void(absl::string_view)> f) {
    on_data_ = std::move(f);
  }
  const std::string& data() const { return data_; }
  int data_calls() const { return data_calls_; }
  int drained() const { return drained_; }
  bool closed() const { return closed_; }
  const absl::Status& reason() const { return reason_; }

 private:
  std::function<void(absl::string_view)> on_data_;
  std::string data_;
  int data_calls_ = 0;
  int drained_ = 0;
  bool closed_ = false;
  absl::Status reason_;
};

}  // namespace pimap::testing

#endif  // PIMAP_TESTS_BINDINGS_FAKE_TRANSPORT_H_
