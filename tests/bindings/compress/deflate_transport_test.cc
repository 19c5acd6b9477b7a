// DeflateTransport: COMPRESS=DEFLATE over a fake inner transport, with zlib as
// the peer (raw deflate both ways, as RFC 4978 clients do). Checks the bytes
// each side gets, the flush per write, the compressor freed while idle,
// bounded inflation (bombs) and failure on bad input.
#include "bindings/compress/deflate_transport.h"

#include <zlib.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/bindings/fake_transport.h"

namespace pimap::compress {
namespace {

using ::pimap::testing::FakeInner;
using ::pimap::testing::RecordingHandler;

// The client's side of the stream: its own raw deflater and inflater.
class Peer {
 public:
  Peer() {
    deflateInit2(&out_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                 Z_DEFAULT_STRATEGY);
    inflateInit2(&in_, -15);
  }
  ~Peer() {
    deflateEnd(&out_);
    inflateEnd(&in_);
  }
  // What the client sends for `text`, sync-flushed.
  std::string Compress(absl::string_view text, int flush = Z_SYNC_FLUSH) {
    std::string out(text.size() + 1024, '\0');
    out_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    out_.avail_in = static_cast<uInt>(text.size());
    out_.next_out = reinterpret_cast<Bytef*>(out.data());
    out_.avail_out = static_cast<uInt>(out.size());
    EXPECT_NE(deflate(&out_, flush), Z_STREAM_ERROR);
    out.resize(out.size() - out_.avail_out);
    return out;
  }
  // What the client reads from the wire bytes it got (all of it: the
  // server flushes every write).
  std::string Inflate(absl::string_view wire) {
    std::string out;
    in_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(wire.data()));
    in_.avail_in = static_cast<uInt>(wire.size());
    char buf[4096];
    do {
      in_.next_out = reinterpret_cast<Bytef*>(buf);
      in_.avail_out = sizeof(buf);
      const int rc = inflate(&in_, Z_SYNC_FLUSH);
      EXPECT_TRUE(rc == Z_OK || rc == Z_BUF_ERROR) << rc;
      out.append(buf, sizeof(buf) - in_.avail_out);
      if (rc == Z_BUF_ERROR) break;
    } while (in_.avail_in > 0 || in_.avail_out == 0);
    return out;
  }

 private:
  z_stream out_{};
  z_stream in_{};
};

class DeflateTransportTest : public ::testing::Test {
 protected:
  DeflateTransportTest() {
    transport_ = new DeflateTransport(&inner_, DeflateConfig{}, &counters_);
    transport_->SetHandler(&handler_);
  }
  ~DeflateTransportTest() override {
    if (transport_ != nullptr) transport_->Abort();
  }

  ShardCounters counters_;
  FakeInner inner_;
  RecordingHandler handler_;
  Peer peer_;
  DeflateTransport* transport_;
};

TEST_F(DeflateTransportTest, ClientBytesAreInflatedForTheHandler) {
  inner_.Feed(peer_.Compress("a1 NOOP\r\n"));
  EXPECT_EQ(handler_.data(), "a1 NOOP\r\n");
  inner_.Feed(peer_.Compress("a2 SELECT INBOX\r\n"));
  EXPECT_EQ(handler_.data(), "a1 NOOP\r\na2 SELECT INBOX\r\n");
  EXPECT_EQ(counters_.compress_in_raw.load(), 26u);
}

TEST_F(DeflateTransportTest, CompressedBytesSplitAnywhereStillArrive) {
  const std::string wire = peer_.Compress("a1 FETCH 1:* (FLAGS)\r\n");
  for (char c : wire) inner_.Feed(absl::string_view(&c, 1));
  EXPECT_EQ(handler_.data(), "a1 FETCH 1:* (FLAGS)\r\n");
}

TEST_F(DeflateTransportTest, EveryWriteIsReadableAtOnce) {
  transport_->Write("* 3 EXISTS\r\n");
  // Sync-flushed: the client decodes it without waiting for more.
  EXPECT_EQ(peer_.Inflate(inner_.TakeWritten()), "* 3 EXISTS\r\n");
  transport_->Write(std::string(5000, 'x'));
  EXPECT_EQ(peer_.Inflate(inner_.TakeWritten()), std::string(5000, 'x'));
  EXPECT_EQ(counters_.compress_out_raw.load(), 5012u);
  EXPECT_LT(counters_.compress_out_wire.load(), 200u);
}

TEST_F(DeflateTransportTest, CompressorIsFreedOnceOutputHasLeft) {
  inner_.Feed(peer_.Compress("a1 NOOP\r\n"));  // the inflater's window exists
  const size_t inflate_only = transport_->state_bytes();
  EXPECT_GT(inflate_only, 0u);
  transport_->Write("* OK Still here\r\n");
  EXPECT_TRUE(transport_->deflater_allocated());
  // Small window and memLevel: far below zlib's ~256 KiB default.
  EXPECT_LT(transport_->state_bytes() - inflate_only, 32u * 1024);
  inner_.handler()->OnTransportDrained();
  EXPECT_FALSE(transport_->deflater_allocated());
  EXPECT_EQ(transport_->state_bytes(), inflate_only);
  EXPECT_EQ(handler_.drained(), 1);
  EXPECT_EQ(counters_.compress_state_bytes.load(),
            static_cast<int64_t>(inflate_only));
  // The next burst starts a new compressor; the client's stream goes on.
  std::string wire = inner_.TakeWritten();
  transport_->Write("* 4 EXISTS\r\n");
  wire += inner_.TakeWritten();
  EXPECT_EQ(peer_.Inflate(wire), "* OK Still here\r\n* 4 EXISTS\r\n");
  // An idle compressed connection holds the inflater only (~40 KiB).
  EXPECT_LE(inflate_only, 48u * 1024);
}

TEST_F(DeflateTransportTest, BombIsInflatedOnlyAsFastAsTheHandlerReads) {
  const std::string bomb =
      peer_.Compress(std::string(8 * 1024 * 1024, 'A'));  // ~8 KiB on the wire
  ASSERT_LT(bomb.size(), 64u * 1024);
  handler_.set_on_data([this](absl::string_view) {
    transport_->SetReading(false);  // the connection holds its input
  });
  inner_.Feed(bomb);
  EXPECT_EQ(handler_.data().size(), DeflateTransport::kChunk);
  EXPECT_FALSE(inner_.reading());  // the socket is paused too
  handler_.set_on_data(nullptr);
  transport_->SetReading(true);
  EXPECT_EQ(handler_.data().size(), 8u * 1024 * 1024);
}

TEST_F(DeflateTransportTest, InputFedBeforeTheSwitchIsInflatedWhenReading) {
  DeflateTransport* t = transport_;
  transport_->SetReading(false);
  t->Feed(peer_.Compress("a3 NOOP\r\n"));
  EXPECT_EQ(handler_.data(), "");
  t->SetReading(true);
  EXPECT_EQ(handler_.data(), "a3 NOOP\r\n");
}

TEST_F(DeflateTransportTest, GarbageClosesTheConnection) {
  inner_.Feed("\xff\xff\xff\xff not deflate");
  EXPECT_TRUE(handler_.closed());
  EXPECT_TRUE(absl::IsInvalidArgument(handler_.reason()));
  EXPECT_TRUE(inner_.aborted());
  transport_ = nullptr;  // freed itself
}

TEST_F(DeflateTransportTest, EndOfTheCompressedStreamClosesTheConnection) {
  inner_.Feed(peer_.Compress("a1 NOOP\r\n", Z_FINISH));
  EXPECT_EQ(handler_.data(), "a1 NOOP\r\n");
  EXPECT_TRUE(handler_.closed());
  transport_ = nullptr;
}

TEST_F(DeflateTransportTest, HandlerMayCloseFromInsideItsCallback) {
  handler_.set_on_data([this](absl::string_view) {
    transport_->Close();
    transport_ = nullptr;
  });
  inner_.Feed(peer_.Compress(std::string(40000, 'B')));
  EXPECT_EQ(handler_.data().size(), DeflateTransport::kChunk);
  EXPECT_TRUE(inner_.closed());
}

TEST_F(DeflateTransportTest, CountersFollowTheConnection) {
  EXPECT_EQ(counters_.compress_connections.load(), 1);
  transport_->Close();
  transport_ = nullptr;
  EXPECT_EQ(counters_.compress_connections.load(), 0);
  EXPECT_EQ(counters_.compress_state_bytes.load(), 0);
}

TEST(DeflateTransportTimedTest, CompressorOutlivesABurstThenGoes) {
  int64_t now = 1000;
  TimerWheel timers(now);
  FakeInner inner;
  RecordingHandler handler;
  Peer peer;
  DeflateConfig config;
  config.idle_free_ms = 5000;
  auto* t = new DeflateTransport(&inner, config, nullptr, &timers);
  t->SetHandler(&handler);
  const std::string event = "* 17 FETCH (FLAGS (\\Seen \\Flagged))\r\n";
  t->Write(event);
  const size_t first = inner.written().size();
  inner.handler()->OnTransportDrained();
  EXPECT_TRUE(t->deflater_allocated());  // kept: the next event may follow
  now += 1000;
  timers.Advance(now);
  t->Write(event);
  // The second copy is a back-reference into the first's history.
  const size_t second = inner.written().size() - first;
  EXPECT_LT(second * 3, first) << first << " then " << second;
  EXPECT_EQ(peer.Inflate(inner.TakeWritten()), event + event);
  inner.handler()->OnTransportDrained();
  now += 4999;
  timers.Advance(now);
  EXPECT_TRUE(t->deflater_allocated());
  now += 1;
  timers.Advance(now);
  EXPECT_FALSE(t->deflater_allocated());  // idle: only the inflater is left
  t->Write(event);  // a fresh compressor continues the stream
  EXPECT_EQ(peer.Inflate(inner.TakeWritten()), event);
  t->Abort();
}

// An inner transport whose writes fail at once and close it, as TLS does when
// SSL_write fails.
class FailingWriteInner final : public engine::Transport {
 public:
  void SetHandler(engine::TransportHandler* h) override { handler_ = h; }
  void Write(absl::string_view bytes) override {
    if (!fail_writes) {
      written.append(bytes.data(), bytes.size());
      return;
    }
    engine::TransportHandler* h = std::exchange(handler_, nullptr);
    if (h != nullptr) h->OnTransportClosed(absl::InternalError("write"));
  }
  void Write(std::string&& b) override { Write(absl::string_view(b)); }
  using Transport::Write;
  size_t PendingOutput() const override { return 0; }
  void SetReading(bool) override {}
  void Close() override { ++closes; }
  void Abort() override {}
  engine::TransportHandler* handler() const { return handler_; }
  bool fail_writes = false;
  std::string written;
  int closes = 0;

 private:
  engine::TransportHandler* handler_ = nullptr;
};

TEST(DeflateTransportFailureTest, CloseWhoseLastWriteFailsIsSafe) {
  FailingWriteInner inner;
  RecordingHandler handler;
  DeflateConfig config;
  config.flush = Z_PARTIAL_FLUSH;  // Close() writes the aligning tail
  auto* t = new DeflateTransport(&inner, config, nullptr, nullptr);
  t->SetHandler(&handler);
  t->Write("* BYE going\r\n");
  inner.fail_writes = true;
  t->Close();  // the tail's write closes the inner transport: no use after free
  EXPECT_FALSE(handler.closed());  // no callback after Close()
}

TEST(DeflateTransportFailureTest, FreeTimerWhoseWriteFailsIsSafe) {
  int64_t now = 0;
  TimerWheel timers(now);
  FailingWriteInner inner;
  RecordingHandler handler;
  DeflateConfig config;
  config.flush = Z_PARTIAL_FLUSH;
  config.idle_free_ms = 100;
  auto* t = new DeflateTransport(&inner, config, nullptr, &timers);
  t->SetHandler(&handler);
  t->Write("* 3 EXISTS\r\n");
  inner.handler()->OnTransportDrained();
  inner.fail_writes = true;
  now += 200;
  timers.Advance(now);  // frees the compressor: its tail fails, t goes
  EXPECT_TRUE(handler.closed());
}

TEST_F(DeflateTransportTest, EveryWriteEndsOnASyncFlushByDefault) {
  // Inflaters that hand data over only at an empty stored block (Go's
  // compress/flate) see every response at once: each write ends with one.
  transport_->Write("* 5 EXISTS\r\n");
  const std::string wire = inner_.TakeWritten();
  ASSERT_GE(wire.size(), 4u);
  EXPECT_EQ(wire.substr(wire.size() - 4), std::string("\x00\x00\xff\xff", 4));
}

}  // namespace
}  // namespace pimap::compress
