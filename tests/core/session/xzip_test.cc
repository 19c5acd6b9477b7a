// XZIP tests (core/session/xzip.h, command_router.cc): the wrapper around one
// inner command, on every kind of session the router carries: a router before
// login (answering like the bindings' pre-login routers), a regular session's
// relay (RelayDriver) and a P-IMAP device (PimapSessionDriver), each driven
// through a framer as the TCP binding drives it, against a fake store link.
// Each answer's literal is inflated with zlib and compared whole.
#include "core/session/xzip.h"

#include <zlib.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/base/shard_counters.h"
#include "core/base/timer_wheel.h"
#include "core/http/content_coding.h"
#include "core/imap/limits.h"
#include "core/session/command_router.h"
#include "core/session/memory_state_store.h"
#include "core/session/pimap_session_driver.h"
#include "core/session/relay_driver.h"
#include "core/session/session_login.h"
#include "core/session/session_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/fake_binding.h"
#include "tests/core/session/fake_store_link.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::FakeBinding;
using ::pimap::session::testing::FakeStoreLink;
using ::pimap::session::testing::FakeWatchFactory;
using ::pimap::session::testing::LoginOk;
using ::pimap::session::testing::SessionIdIn;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// gunzip (windowBits 31: a gzip wrapper only); "<bad gzip>" when it is not
// one complete gzip member.
std::string Gunzip(absl::string_view gz) {
  z_stream strm;
  std::memset(&strm, 0, sizeof(strm));
  if (inflateInit2(&strm, 31) != Z_OK) return "<bad gzip>";
  std::string out;
  strm.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  strm.avail_in = static_cast<uInt>(gz.size());
  int ret = Z_OK;
  while (ret == Z_OK) {
    char buf[16384];
    strm.next_out = reinterpret_cast<Bytef*>(buf);
    strm.avail_out = sizeof(buf);
    ret = inflate(&strm, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - strm.avail_out);
    if (ret == Z_BUF_ERROR && strm.avail_in == 0) break;
  }
  const bool whole = ret == Z_STREAM_END && strm.avail_in == 0;
  inflateEnd(&strm);
  return whole ? out : "<bad gzip>";
}

// An XZIP answer at the start of `transcript`: "* {N}\r\n", N octets of
// gzip, "\r\n", then the rest. Returns the inflated octets and sets *rest;
// "<no literal>" when the transcript does not start with one.
std::string Unwrap(absl::string_view transcript, std::string* rest) {
  if (!absl::StartsWith(transcript, "* {")) return "<no literal>";
  const size_t close = transcript.find("}\r\n");
  size_t n = 0;
  if (close == absl::string_view::npos ||
      !absl::SimpleAtoi(transcript.substr(3, close - 3), &n) ||
      transcript.size() < close + 3 + n + 2 ||
      transcript.substr(close + 3 + n, 2) != "\r\n") {
    return "<no literal>";
  }
  *rest = std::string(transcript.substr(close + 3 + n + 2));
  return Gunzip(transcript.substr(close + 3, n));
}

// A router before login that answers like the bindings' pre-login routers
// (session_login.h) through its output, or, with `capturable` false, like
// one that writes to its binding directly (XZIP refused).
class PreLoginRouter final : public CommandRouter {
 public:
  PreLoginRouter(ShardCounters* counters, DeviceOutput* output, bool capturable)
      : CommandRouter(counters, output, imap::ParserLimits{}),
        capturable_(capturable) {}

 private:
  void Execute(const imap::Command& command) override {
    PreAuthStep step = ExecutePreAuth(command, {false, true, capturable_});
    Write(std::move(step.response));
  }
  bool WritesThroughOutput() const override { return capturable_; }

  bool capturable_;
};

// ---- Before login
// -------------------------------------------------------------

class XzipPreLoginTest : public ::testing::Test {
 protected:
  void Attach(bool capturable) {
    device_.Attach(new PreLoginRouter(&counters_, &device_, capturable));
  }

  ShardCounters counters_;
  FakeBinding device_;
};

TEST_F(XzipPreLoginTest, WrapsNoopAndCapability) {
  Attach(true);
  device_.Type("x XZIP n NOOP\r\n");
  std::string rest;
  EXPECT_EQ(Unwrap(device_.Take(), &rest), "n OK NOOP completed\r\n");
  EXPECT_EQ(rest, "x OK XZIP completed\r\n");

  device_.Type("y xzip c CAPABILITY\r\n");
  EXPECT_EQ(
      Unwrap(device_.Take(), &rest),
      "* CAPABILITY IMAP4rev1 LITERAL- SASL-IR ID AUTH=PLAIN XZIP XTERSE\r\n"
      "c OK CAPABILITY completed\r\n");
  EXPECT_EQ(rest, "y OK XZIP completed\r\n");
  EXPECT_FALSE(device_.input_held);
  EXPECT_EQ(counters_.xzip_commands.load(), 2u);
  EXPECT_GT(counters_.xzip_raw_bytes.load(), 0u);
  EXPECT_GT(counters_.xzip_wire_bytes.load(), 0u);
}

TEST_F(XzipPreLoginTest, PipelinedCommandsKeepTheirOrder) {
  Attach(true);
  device_.Type("a NOOP\r\nx XZIP b NOOP\r\nc NOOP\r\n");
  const std::string got = device_.Take();
  ASSERT_TRUE(absl::StartsWith(got, "a OK NOOP completed\r\n")) << got;
  std::string rest;
  EXPECT_EQ(Unwrap(got.substr(strlen("a OK NOOP completed\r\n")), &rest),
            "b OK NOOP completed\r\n");
  EXPECT_EQ(rest, "x OK XZIP completed\r\nc OK NOOP completed\r\n");
}

TEST_F(XzipPreLoginTest, RefusesWhatNeedsAContinuationOrChangesTheConnection) {
  Attach(true);
  device_.Type(
      "a XZIP i IDLE\r\n"
      "b XZIP s STARTTLS\r\n"
      "c XZIP z COMPRESS DEFLATE\r\n"
      "d XZIP q XZIP r NOOP\r\n"
      "e XZIP l LOGIN alice pw\r\n"
      "f XZIP p AUTHENTICATE PLAIN\r\n"
      "g XZIP o LOGOUT\r\n"
      "n NOOP\r\n");
  EXPECT_EQ(device_.Take(),
            "a BAD IDLE cannot run inside XZIP\r\n"
            "b BAD STARTTLS cannot run inside XZIP\r\n"
            "c BAD COMPRESS cannot run inside XZIP\r\n"
            "d BAD XZIP cannot run inside XZIP\r\n"
            "e BAD LOGIN cannot run inside XZIP\r\n"
            "f BAD AUTHENTICATE cannot run inside XZIP\r\n"
            "g BAD LOGOUT cannot run inside XZIP\r\n"
            "n OK NOOP completed\r\n");
  EXPECT_FALSE(device_.closed);
  EXPECT_EQ(counters_.xzip_commands.load(), 0u);
}

TEST_F(XzipPreLoginTest, MalformedXzipIsBad) {
  Attach(true);
  device_.Type(
      "a XZIP\r\nb XZIP \r\nc XZIP t\r\nd XZIP (x) NOOP\r\nn NOOP\r\n");
  const std::string got = device_.Take();
  EXPECT_THAT(got, HasSubstr("a BAD XZIP expects a tagged command"));
  EXPECT_THAT(got, HasSubstr("b BAD XZIP expects a tagged command"));
  EXPECT_THAT(got, HasSubstr("c BAD XZIP expects a tagged command"));
  EXPECT_THAT(got, HasSubstr("d BAD XZIP expects a tagged command"));
  EXPECT_TRUE(absl::EndsWith(got, "n OK NOOP completed\r\n")) << got;
}

TEST_F(XzipPreLoginTest, SynchronisingLiteralIsRefusedWithoutContinuation) {
  Attach(true);
  device_.Type("x XZIP c CAPABILITY {3}\r\nn NOOP\r\n");
  // No "+": the client sends no literal and the next line is a command.
  EXPECT_EQ(device_.Take(),
            "x BAD XZIP cannot wait for a literal: use a non-synchronising "
            "literal ({n+})\r\nn OK NOOP completed\r\n");
  EXPECT_EQ(counters_.xzip_commands.load(), 0u);
}

TEST_F(XzipPreLoginTest, InnerCommandsOwnBadIsInsideTheAnswer) {
  Attach(true);
  device_.Type("x XZIP a NOOP (\r\nn NOOP\r\n");
  std::string rest;
  const std::string inner = Unwrap(device_.Take(), &rest);
  EXPECT_TRUE(absl::StartsWith(inner, "a BAD ")) << inner;
  EXPECT_EQ(rest, "x OK XZIP completed\r\nn OK NOOP completed\r\n");
}

TEST_F(XzipPreLoginTest, RouterWritingToItsBindingRefusesXzip) {
  Attach(false);
  device_.Type("x XZIP n NOOP\r\nc CAPABILITY\r\n");
  EXPECT_EQ(device_.Take(),
            "x NO [CANNOT] XZIP is not available here\r\n"
            "* CAPABILITY IMAP4rev1 LITERAL- SASL-IR ID AUTH=PLAIN XTERSE\r\n"
            "c OK CAPABILITY completed\r\n");
}

// ---- A regular session's relay ----------------------------------------------

class XzipRelayTest : public ::testing::Test {
 protected:
  XzipRelayTest() {
    DriverServices services;
    services.counters = &counters_;
    services.compressor = &compressor_;  // the shard's
    services.max_output_bytes = 1 << 20;
    driver_ =
        new RelayDriver(services, &device_, imap::ParserLimits{}, "alice",
                        StoreCredentials{"alice", "pw", ""}, RelayParkConfig{});
    device_.Attach(driver_);
    driver_->Start(&store_, "a1");
    device_.Take();
  }

  ShardCounters counters_;
  http::ShardCompressor compressor_;
  FakeStoreLink store_;
  FakeBinding device_;
  RelayDriver* driver_;
};

TEST_F(XzipRelayTest, RelayedFetchIsAnsweredWhole) {
  device_.Type("x XZIP f FETCH 1:* (UID FLAGS)\r\nn NOOP\r\n");
  // The inner command goes to the store as it would unwrapped; nothing more
  // is read until the XZIP's answer.
  EXPECT_EQ(store_.TakeSent(), "f FETCH 1:* (UID FLAGS)\r\n");
  EXPECT_TRUE(device_.input_held);
  EXPECT_EQ(device_.pending_input(), "n NOOP\r\n");
  store_.Reply("* 1 FETCH (UID 4 FLAGS (\\Seen))");
  store_.ReplyPieces(
      {"* 2 FETCH (UID 9 BODY[] {11}\r\n", "f OK fake\r\n", " FLAGS ())\r\n"});
  EXPECT_EQ(device_.Take(), "");  // the literal's "f OK" is no completion
  store_.Complete("f", "OK Fetch completed");
  std::string rest;
  EXPECT_EQ(Unwrap(device_.Take(), &rest),
            "* 1 FETCH (UID 4 FLAGS (\\Seen))\r\n"
            "* 2 FETCH (UID 9 BODY[] {11}\r\nf OK fake\r\n FLAGS ())\r\n"
            "f OK Fetch completed\r\n");
  EXPECT_EQ(rest, "x OK XZIP completed\r\n");
  // Input goes on: the NOOP is relayed.
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\n");
  store_.Complete("n", "OK NOOP completed");
  EXPECT_EQ(device_.Take(), "n OK NOOP completed\r\n");
  EXPECT_THAT(device_.unexpected, IsEmpty());
}

TEST_F(XzipRelayTest, WaitsForRelayedCommandsBeforeIt) {
  device_.Type("b NOOP\r\nx XZIP c CAPABILITY\r\nd NOOP\r\n");
  EXPECT_EQ(store_.TakeSent(), "b NOOP\r\n");
  EXPECT_EQ(device_.Take(), "");
  EXPECT_TRUE(device_.input_held);
  store_.Complete("b", "OK NOOP completed");
  const std::string got = device_.Take();
  ASSERT_TRUE(absl::StartsWith(got, "b OK NOOP completed\r\n")) << got;
  std::string rest;
  EXPECT_THAT(Unwrap(got.substr(strlen("b OK NOOP completed\r\n")), &rest),
              HasSubstr(" XZIP ID XTERSE XSYNC COMPRESS=DEFLATE\r\nc OK "
                        "CAPABILITY completed\r\n"));
  EXPECT_EQ(rest, "x OK XZIP completed\r\n");
  EXPECT_EQ(store_.TakeSent(), "d NOOP\r\n");
}

TEST_F(XzipRelayTest, NonSynchronisingLiteralsGoThrough) {
  device_.Type("x XZIP a APPEND INBOX ~{5+}\r\nhello\r\n");
  EXPECT_EQ(store_.TakeSent(), "a APPEND INBOX ~{5+}\r\nhello\r\n");
  store_.Complete("a", "OK [APPENDUID 7 20] Append completed");
  std::string rest;
  EXPECT_EQ(Unwrap(device_.Take(), &rest),
            "a OK [APPENDUID 7 20] Append completed\r\n");
  EXPECT_EQ(rest, "x OK XZIP completed\r\n");
}

TEST_F(XzipRelayTest, SynchronisingLiteralIsRefusedAndNothingRuns) {
  device_.Type("x XZIP a APPEND INBOX {5}\r\nn NOOP\r\n");
  EXPECT_EQ(device_.Take(),
            "x BAD XZIP cannot wait for a literal: use a non-synchronising "
            "literal ({n+})\r\n");
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\n");
  // The same with the literal on a later line of the inner command.
  device_.Type("y XZIP a APPEND INBOX (\\Seen) {5+}\r\nhello {3}\r\n");
  store_.Complete("n", "OK NOOP completed");
  EXPECT_EQ(device_.Take(),
            "n OK NOOP completed\r\n"
            "y BAD XZIP cannot wait for a literal: use a non-synchronising "
            "literal ({n+})\r\n");
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(XzipRelayTest, RefusedIdleLeavesTheSessionAsItWas) {
  device_.Type("x XZIP i IDLE\r\nn NOOP\r\n");
  EXPECT_EQ(device_.Take(), "x BAD IDLE cannot run inside XZIP\r\n");
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\n");
  EXPECT_FALSE(device_.input_held);
}

TEST_F(XzipRelayTest, ResponseOverTheBoundIsRefusedAndTheCommandCompletes) {
  device_.Type("x XZIP f FETCH 1 BODY[]\r\nn NOOP\r\n");
  EXPECT_EQ(store_.TakeSent(), "f FETCH 1 BODY[]\r\n");
  const std::string body(5 << 20, 'a');  // more than max(4 MiB, 1 MiB)
  store_.ReplyPieces({absl::StrCat("* 1 FETCH (BODY[] {", body.size(), "}\r\n"),
                      body, ")\r\n"});
  store_.Complete("f", "OK Fetch completed");
  EXPECT_EQ(device_.Take(),
            "x NO [LIMIT] XZIP response too large (run the command "
            "unwrapped)\r\n");
  EXPECT_EQ(counters_.xzip_too_large.load(), 1u);
  EXPECT_EQ(store_.TakeSent(), "n NOOP\r\n");
  store_.Complete("n", "OK NOOP completed");
  EXPECT_EQ(device_.Take(), "n OK NOOP completed\r\n");
}

TEST_F(XzipRelayTest, AnswerOverTheOutputBoundIsRefused) {
  // Under the capture bound (4 MiB) but incompressible past what one write
  // may put in front of the device (3/4 of --max-output-bytes, 1 MiB here).
  device_.Type("x XZIP f FETCH 1 BODY[]\r\n");
  std::string body;
  uint32_t v = 1;
  for (int i = 0; i < (2 << 20); ++i) {
    v = v * 1103515245 + 12345;
    body.push_back(static_cast<char>('!' + (v >> 16) % 90));
  }
  store_.TakeSent();
  store_.ReplyPieces({absl::StrCat("* 1 FETCH (BODY[] {", body.size(), "}\r\n"),
                      body, ")\r\n"});
  store_.Complete("f", "OK Fetch completed");
  EXPECT_EQ(device_.Take(),
            "x NO [LIMIT] XZIP response too large (run the command "
            "unwrapped)\r\n");
}

TEST_F(XzipRelayTest, ResponseOpenWhenItStartsEndsOutsideTheLiteral) {
  // The store is in the middle of an unsolicited response when the XZIP runs:
  // its rest goes to the device as it would, the capture starts after it.
  store_.client()->OnStoreBytes("* 3 EXI");
  device_.Type("x XZIP c CAPABILITY\r\n");
  store_.client()->OnStoreBytes("STS\r\n");
  store_.client()->OnStoreResponseEnd("");
  const std::string got = device_.Take();
  ASSERT_TRUE(absl::StartsWith(got, "* 3 EXISTS\r\n")) << got;
  std::string rest;
  EXPECT_THAT(Unwrap(got.substr(strlen("* 3 EXISTS\r\n")), &rest),
              HasSubstr("c OK CAPABILITY completed\r\n"));
  EXPECT_EQ(rest, "x OK XZIP completed\r\n");
}

TEST_F(XzipRelayTest, StoreLostWhileItRunsEndsTheSession) {
  device_.Type("x XZIP f FETCH 1:* (FLAGS)\r\n");
  store_.Reply("* 1 FETCH (FLAGS ())");
  store_.Lose(absl::UnavailableError("gone"));
  EXPECT_EQ(device_.Take(), "* BYE Connection to the message store lost\r\n");
  EXPECT_TRUE(device_.closed);
}

// ---- A P-IMAP device
// ------------------------------------------------------------

class XzipPimapTest : public ::testing::Test {
 protected:
  XzipPimapTest()
      : timers_(MonotonicNowMs()),
        registry_(&timers_, &counters_, &config_, &watches_, &state_) {
    driver_ =
        new PimapSessionDriver({&registry_, &counters_, &timers_}, &device_,
                               imap::ParserLimits{}, "alice", "phone");
    device_.Attach(driver_);
    driver_->Start(&store_, "a1", "pw");
    EXPECT_EQ(store_.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    store_.Reply("* ENABLED QRESYNC");
    store_.Complete("~p1", "OK Enabled");
    const std::string got = device_.Take();
    EXPECT_EQ(got, absl::StrCat("* SESSIONID ", SessionIdIn(got), "\r\n",
                                LoginOk("a1")));
  }

  // SELECT INBOX with UIDs 4, 9, 12 (testing::AnswerSelect).
  void Select() {
    device_.Type("b SELECT INBOX\r\n");
    testing::AnswerSelect(store_, "INBOX");
    EXPECT_THAT(device_.Take(), HasSubstr("b OK [READ-WRITE]"));
    EXPECT_FALSE(device_.input_held);
  }

  TimerWheel timers_;
  ShardCounters counters_;
  SessionConfig config_;
  FakeWatchFactory watches_;
  MemoryStateStore state_;
  SessionRegistry registry_;
  FakeStoreLink store_;
  FakeBinding device_;
  PimapSessionDriver* driver_;
};

TEST_F(XzipPimapTest, FetchInTheSelectedMailbox) {
  Select();
  device_.Type("x XZIP c FETCH 1:* (UID FLAGS)\r\nn CAPABILITY\r\n");
  const std::string up = store_.last_tag();
  EXPECT_EQ(store_.TakeSent(),
            absl::StrCat(up, " UID FETCH 4,9,12 (UID FLAGS)\r\n"));
  EXPECT_TRUE(device_.input_held);
  store_.Reply("* 10 FETCH (UID 4 FLAGS () MODSEQ (3))");
  store_.Reply("* 11 FETCH (UID 9 FLAGS (\\Seen) MODSEQ (4))");
  store_.Reply("* 12 FETCH (UID 12 FLAGS (\\Flagged) MODSEQ (5))");
  EXPECT_EQ(device_.Take(), "");
  store_.Complete(up, "OK Fetch completed");
  const std::string got = device_.Take();
  std::string rest;
  EXPECT_EQ(Unwrap(got, &rest),
            "* 1 FETCH (UID 4 FLAGS ())\r\n"
            "* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
            "* 3 FETCH (UID 12 FLAGS (\\Flagged))\r\n"
            "c OK Fetch completed\r\n")
      << got;
  // The outer OK follows, then the next command (answered by the engine).
  EXPECT_TRUE(absl::StartsWith(rest, "x OK XZIP completed\r\n* CAPABILITY "))
      << rest;
  EXPECT_FALSE(device_.input_held);
  EXPECT_EQ(store_.TakeSent(), "");
}

TEST_F(XzipPimapTest, EngineAnswersAtOnceAndSessionCommandsWork) {
  Select();
  device_.Type("x XZIP g XGETPIMAPPREF PIMAP_EVENT_FILTER\r\n");
  std::string rest;
  EXPECT_THAT(Unwrap(device_.Take(), &rest),
              HasSubstr("g OK XGETPIMAPPREF completed\r\n"));
  EXPECT_EQ(rest, "x OK XZIP completed\r\n");
  device_.Type("y XZIP c CAPABILITY\r\n");
  EXPECT_THAT(Unwrap(device_.Take(), &rest),
              HasSubstr("c OK CAPABILITY completed\r\n"));
  EXPECT_EQ(rest, "y OK XZIP completed\r\n");
}

TEST_F(XzipPimapTest, RefusedIdleDoesNotEnterIdle) {
  Select();
  device_.Type("x XZIP i IDLE\r\nn NOOP\r\n");
  EXPECT_EQ(device_.Take(), "x BAD IDLE cannot run inside XZIP\r\n");
  // The NOOP runs as a plain command: the session is not idling.
  const std::string up = store_.last_tag();
  EXPECT_EQ(store_.TakeSent(), absl::StrCat(up, " NOOP\r\n"));
  store_.Complete(up, "OK NOOP completed");
  EXPECT_EQ(device_.Take(), "n OK NOOP completed\r\n");
}

TEST_F(XzipPimapTest, AppendStreamsInsideXzip) {
  device_.Type("x XZIP b APPEND INBOX {5+}\r\nhello\r\n");
  EXPECT_EQ(store_.TakeSent(), "b APPEND INBOX {5+}\r\nhello\r\n");
  store_.Complete("b", "OK [APPENDUID 7 20] Append completed");
  std::string rest;
  EXPECT_EQ(Unwrap(device_.Take(), &rest),
            "b OK [APPENDUID 7 20] Append completed\r\n");
  EXPECT_EQ(rest, "x OK XZIP completed\r\n");
  EXPECT_FALSE(device_.input_held);
}

// ---- The pieces -------------------------------------------------------------

TEST(XzipPartsTest, GzipWithAndWithoutTheShardsCompressor) {
  http::ShardCompressor shard;
  const std::string text = "* 1 FETCH (UID 4 FLAGS ())\r\nc OK done\r\n";
  EXPECT_EQ(Gunzip(XzipGzip(text, &shard)), text);
  EXPECT_EQ(Gunzip(XzipGzip(text, nullptr)), text);
  EXPECT_EQ(Gunzip(XzipGzip("", nullptr)), "");
}

TEST(XzipPartsTest, ParsesTheInnerCommand) {
  absl::StatusOr<XzipInner> inner =
      ParseXzipLine("A001 XZIP A002 uid FETCH 1:*", "A001");
  ASSERT_TRUE(inner.ok()) << inner.status();
  EXPECT_EQ(inner->offset, 10u);
  EXPECT_EQ(inner->tag, "A002");
  EXPECT_EQ(inner->name, "UID");
  EXPECT_FALSE(ParseXzipLine("A001 XZIP", "A001").ok());
  EXPECT_FALSE(ParseXzipLine("A001 XZIP A002", "A001").ok());
  EXPECT_TRUE(XzipWraps("FETCH"));
  EXPECT_FALSE(XzipWraps("IDLE"));
}

}  // namespace
}  // namespace pimap::session
