// TlsTransport: the TLS record layer over an inner Transport. A fake inner
// transport stands in for the socket and a BoringSSL client over memory BIOs
// stands in for the device; the test carries the ciphertext between them by
// hand, so chunking, timing and hand-over are all under its control. Runs once
// per TLS version.
#include "bindings/tls/tls_transport.h"

#include <openssl/bio.h>
#include <openssl/buf.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bindings/tls/tls_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/bindings/fake_transport.h"
#include "tests/bindings/tls/test_certs.h"

namespace pimap::tls {
namespace {

using ::pimap::testing::FakeInner;
using ::pimap::testing::RecordingHandler;
using ::testing::HasSubstr;

// The device: a BoringSSL client whose ciphertext the test moves by hand.
class TlsClient {
 public:
  explicit TlsClient(uint16_t max_version) : ctx_(SSL_CTX_new(TLS_method())) {
    SSL_CTX_set_max_proto_version(ctx_.get(), max_version);
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_connect_state(ssl_.get());
    SSL_set_bio(ssl_.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  }

  SSL* ssl() const { return ssl_.get(); }
  bool handshake_done() const { return SSL_is_init_finished(ssl_.get()); }

  void Handshake() {
    int rc = SSL_do_handshake(ssl_.get());
    if (rc != 1) {
      EXPECT_EQ(SSL_get_error(ssl_.get(), rc), SSL_ERROR_WANT_READ)
          << LastTlsError();
    }
  }
  // Ciphertext from the server.
  void Receive(absl::string_view ciphertext) {
    ASSERT_EQ(BIO_write(SSL_get_rbio(ssl_.get()), ciphertext.data(),
                        static_cast<int>(ciphertext.size())),
              static_cast<int>(ciphertext.size()));
  }
  // Ciphertext for the server, everything produced so far.
  std::string TakeCiphertext() {
    BIO* wbio = SSL_get_wbio(ssl_.get());
    std::string out(BIO_pending(wbio), '\0');
    if (out.empty()) return out;
    EXPECT_EQ(BIO_read(wbio, out.data(), static_cast<int>(out.size())),
              static_cast<int>(out.size()));
    return out;
  }
  // Encrypts `plain` (one record, or several when large) and returns the
  // records.
  std::string Seal(absl::string_view plain) {
    EXPECT_EQ(
        SSL_write(ssl_.get(), plain.data(), static_cast<int>(plain.size())),
        static_cast<int>(plain.size()))
        << LastTlsError();
    return TakeCiphertext();
  }
  // All plaintext the received ciphertext decrypts to.
  std::string Read() {
    std::string out;
    char buf[16 * 1024];
    for (;;) {
      int n = SSL_read(ssl_.get(), buf, sizeof(buf));
      if (n <= 0) {
        last_error_ = SSL_get_error(ssl_.get(), n);
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  // SSL_get_error of the read that ended the last Read().
  int last_error() const { return last_error_; }
  // Queues close_notify and returns it as ciphertext.
  std::string CloseNotify() {
    SSL_shutdown(ssl_.get());
    return TakeCiphertext();
  }

 private:
  bssl::UniquePtr<SSL_CTX> ctx_;
  bssl::UniquePtr<SSL> ssl_;
  int last_error_ = SSL_ERROR_NONE;
};

// Capacity of a memory BIO's buffer (what it holds on to, used or not).
size_t BioCapacity(BIO* bio) {
  BUF_MEM* mem = nullptr;
  if (bio == nullptr || BIO_get_mem_ptr(bio, &mem) != 1 || mem == nullptr) {
    return SIZE_MAX;
  }
  return mem->max;
}

::testing::AssertionResult BiosHoldNoStorage(SSL* ssl) {
  const size_t r = BioCapacity(SSL_get_rbio(ssl));
  const size_t w = BioCapacity(SSL_get_wbio(ssl));
  if (r == 0 && w == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "read BIO capacity " << r << ", write BIO capacity " << w;
}

std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + i % 23);
  return s;
}

class TlsTransportTest : public ::testing::TestWithParam<uint16_t> {
 protected:
  TlsTransportTest() : client_(GetParam()) {}

  void SetUp() override {
    ASSERT_TRUE(creds_.Generate());
    auto ctx = TlsContext::CreateServer(creds_.cert_path(), creds_.key_path());
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ctx_ = *std::move(ctx);
  }

  void TearDown() override {
    if (tls_ != nullptr) tls_->Abort();
  }

  // A server-side TlsTransport over `inner`, reporting to `handler`.
  TlsTransport* Open(FakeInner* inner, RecordingHandler* handler) {
    server_ssl_ = ctx_->NewServerSsl();
    if (server_ssl_ == nullptr) return nullptr;
    auto* tls = new TlsTransport(inner, server_ssl_);
    EXPECT_NE(inner->handler(), nullptr);  // TLS took the socket over
    tls->SetHandler(handler);
    return tls;
  }

  // Moves ciphertext both ways, driving the client's handshake, until neither
  // side has more to send.
  void Shuttle() {
    for (int round = 0; round < 50; ++round) {
      if (!client_.handshake_done()) client_.Handshake();
      std::string up = client_.TakeCiphertext();
      std::string down = inner_.TakeWritten();
      if (up.empty() && down.empty()) return;
      if (!up.empty()) inner_.Feed(up);
      if (!down.empty()) client_.Receive(down);
    }
    ADD_FAILURE() << "ciphertext kept flowing";
  }

  // Opens tls_ and completes the handshake.
  void Connect() {
    tls_ = Open(&inner_, &handler_);
    ASSERT_NE(tls_, nullptr);
    Shuttle();
    if (handler_.closed()) Forget();  // it failed and freed itself
    ASSERT_TRUE(client_.handshake_done());
    ASSERT_TRUE(SSL_is_init_finished(server_ssl_));
    ASSERT_FALSE(handler_.closed()) << handler_.reason();
  }

  // What the client decrypts from everything the server wrote so far.
  std::string ClientReads() {
    client_.Receive(inner_.TakeWritten());
    return client_.Read();
  }

  // The transport freed itself (or was handed over): TearDown must not touch
  // it.
  void Forget() { tls_ = nullptr; }

  testing::TempCredentials creds_;
  std::shared_ptr<TlsContext> ctx_;
  TlsClient client_;
  FakeInner inner_;
  RecordingHandler handler_;
  TlsTransport* tls_ = nullptr;
  SSL* server_ssl_ = nullptr;  // owned by tls_ (or by whoever it was handed to)
};

TEST_P(TlsTransportTest, HandshakeCompletes) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  EXPECT_EQ(SSL_version(client_.ssl()), GetParam());
  EXPECT_TRUE(tls_->is_tls());
  EXPECT_EQ(handler_.data(), "");
  EXPECT_TRUE(inner_.live());
  EXPECT_TRUE(inner_.reading());
}

TEST_P(TlsTransportTest, ServerWritesReachTheClient) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  tls_->Write(absl::string_view("* OK pimap ready\r\n"));
  tls_->Write(std::string("* CAPABILITY IMAP4rev1\r\n"));
  tls_->Write("a1 OK done\r\n");
  EXPECT_EQ(ClientReads(),
            "* OK pimap ready\r\n* CAPABILITY IMAP4rev1\r\na1 OK done\r\n");
}

TEST_P(TlsTransportTest, ClientRecordsReachTheHandler) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  inner_.Feed(client_.Seal("a1 NOOP\r\n"));
  EXPECT_EQ(handler_.data(), "a1 NOOP\r\n");
  inner_.Feed(client_.Seal("a2 LOGOUT\r\n"));
  EXPECT_EQ(handler_.data(), "a1 NOOP\r\na2 LOGOUT\r\n");
  EXPECT_FALSE(handler_.closed());
}

TEST_P(TlsTransportTest, RecordsSplitIntoSingleBytes) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  const std::string first = client_.Seal("a1 CAPABILITY\r\n");
  const std::string second = client_.Seal("a2 NOOP\r\n");
  // Nothing decrypts before a record's last byte is in.
  for (size_t i = 0; i + 1 < first.size(); ++i) {
    inner_.Feed(absl::string_view(first).substr(i, 1));
  }
  EXPECT_EQ(handler_.data(), "");
  inner_.Feed(absl::string_view(first).substr(first.size() - 1));
  EXPECT_EQ(handler_.data(), "a1 CAPABILITY\r\n");
  for (char c : second) inner_.Feed(absl::string_view(&c, 1));
  EXPECT_EQ(handler_.data(), "a1 CAPABILITY\r\na2 NOOP\r\n");
  EXPECT_FALSE(handler_.closed());
}

TEST_P(TlsTransportTest, SeveralRecordsInOneChunk) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  std::string chunk = client_.Seal("a1 NOOP\r\n");
  chunk += client_.Seal("a2 NOOP\r\n");
  chunk += client_.Seal("a3 LOGOUT\r\n");
  inner_.Feed(chunk);
  EXPECT_EQ(handler_.data(), "a1 NOOP\r\na2 NOOP\r\na3 LOGOUT\r\n");
}

TEST_P(TlsTransportTest, ChunksCuttingAcrossRecordBoundaries) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  const std::string plain = Pattern(100 * 1024);  // several full records
  const std::string ciphertext = client_.Seal(plain);
  for (size_t at = 0; at < ciphertext.size(); at += 1000) {
    inner_.Feed(absl::string_view(ciphertext).substr(at, 1000));
  }
  EXPECT_EQ(handler_.data(), plain);
}

TEST_P(TlsTransportTest, LargeWriteReachesTheClient) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  const std::string plain = Pattern(300 * 1024);
  tls_->Write(plain);
  EXPECT_EQ(ClientReads(), plain);
}

TEST_P(TlsTransportTest, OutputBeforeTheHandshakeIsSentAfterIt) {
  tls_ = Open(&inner_, &handler_);
  ASSERT_NE(tls_, nullptr);
  // The greeting of an implicit-TLS port, queued before the ClientHello
  // arrives.
  tls_->Write("* OK pimap ready\r\n");
  EXPECT_EQ(inner_.written(), "");
  EXPECT_EQ(tls_->PendingOutput(), strlen("* OK pimap ready\r\n"));
  Shuttle();
  ASSERT_TRUE(client_.handshake_done());
  EXPECT_EQ(tls_->PendingOutput(), 0u);
  EXPECT_EQ(client_.Read(), "* OK pimap ready\r\n");
  tls_->Write("* BYE\r\n");
  EXPECT_EQ(ClientReads(), "* BYE\r\n");
}

TEST_P(TlsTransportTest, PendingOutputIncludesTheInnerQueue) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  inner_.set_pending_output(4321);
  EXPECT_EQ(tls_->PendingOutput(), 4321u);
}

TEST_P(TlsTransportTest, DrainedIsForwarded) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  inner_.handler()->OnTransportDrained();
  EXPECT_EQ(handler_.drained(), 1);
}

TEST_P(TlsTransportTest, PausedReadingKeepsRecordsUntilResumed) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  tls_->SetReading(false);
  EXPECT_FALSE(inner_.reading());
  // A receive that was in flight still completes.
  std::string chunk = client_.Seal("a1 NOOP\r\n");
  chunk += client_.Seal("a2 NOOP\r\n");
  inner_.Feed(chunk);
  EXPECT_EQ(handler_.data(), "");
  tls_->SetReading(true);
  EXPECT_TRUE(inner_.reading());
  EXPECT_EQ(handler_.data(), "a1 NOOP\r\na2 NOOP\r\n");
}

TEST_P(TlsTransportTest, CorruptRecordFailsTheTransport) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  std::string record = client_.Seal("a1 LOGIN user secret\r\n");
  record.back() ^= 0x01;  // inside the AEAD tag
  inner_.Feed(record);
  Forget();
  EXPECT_TRUE(handler_.closed());
  EXPECT_EQ(handler_.reason().code(), absl::StatusCode::kUnavailable)
      << handler_.reason();
  EXPECT_THAT(handler_.reason().message(), HasSubstr("TLS read"));
  EXPECT_EQ(handler_.data(), "");
  EXPECT_TRUE(inner_.aborted());
  EXPECT_FALSE(inner_.closed());
  EXPECT_EQ(inner_.handler(), nullptr);
}

TEST_P(TlsTransportTest, GarbageInsteadOfClientHelloFailsTheTransport) {
  tls_ = Open(&inner_, &handler_);
  ASSERT_NE(tls_, nullptr);
  inner_.Feed("a1 CAPABILITY\r\n");  // a plain-text client on the TLS port
  Forget();
  EXPECT_TRUE(handler_.closed());
  EXPECT_FALSE(handler_.reason().ok());
  EXPECT_THAT(handler_.reason().message(), HasSubstr("handshake"));
  EXPECT_TRUE(inner_.aborted());
}

TEST_P(TlsTransportTest, CloseNotifyFromTheClientClosesWithOk) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  // The last command and the close_notify arrive in one receive.
  std::string chunk = client_.Seal("a1 LOGOUT\r\n");
  chunk += client_.CloseNotify();
  inner_.Feed(chunk);
  Forget();
  EXPECT_EQ(handler_.data(), "a1 LOGOUT\r\n");
  EXPECT_TRUE(handler_.closed());
  EXPECT_TRUE(handler_.reason().ok()) << handler_.reason();
  EXPECT_FALSE(inner_.live());
}

TEST_P(TlsTransportTest, InnerCloseReachesTheHandler) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  inner_.handler()->OnTransportClosed(absl::UnavailableError("reset by peer"));
  Forget();
  EXPECT_TRUE(handler_.closed());
  EXPECT_EQ(handler_.reason(), absl::UnavailableError("reset by peer"));
}

TEST_P(TlsTransportTest, CloseSendsCloseNotifyThenClosesInner) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  tls_->Write("* BYE\r\n");
  tls_->Close();
  Forget();
  EXPECT_TRUE(inner_.closed());
  EXPECT_FALSE(inner_.aborted());
  EXPECT_EQ(inner_.written_at_close(), inner_.written().size());
  EXPECT_FALSE(handler_.closed());  // Close() reports nothing
  EXPECT_EQ(ClientReads(), "* BYE\r\n");
  EXPECT_EQ(client_.last_error(), SSL_ERROR_ZERO_RETURN);  // close_notify
}

TEST_P(TlsTransportTest, AbortDropsTheConnectionWithoutCloseNotify) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  tls_->Abort();
  Forget();
  EXPECT_TRUE(inner_.aborted());
  EXPECT_EQ(inner_.written(), "");
  EXPECT_FALSE(handler_.closed());
}

TEST_P(TlsTransportTest, HandlerClosingInsideDataCallbackStopsDelivery) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  handler_.set_on_data([this](absl::string_view) {
    tls_->Write("* BYE\r\n");
    tls_->Close();
  });
  std::string chunk = client_.Seal("a1 LOGOUT\r\n");
  chunk += client_.Seal("a2 NOOP\r\n");
  inner_.Feed(chunk);
  Forget();
  EXPECT_EQ(handler_.data_calls(), 1);
  EXPECT_EQ(handler_.data(), "a1 LOGOUT\r\n");
  EXPECT_TRUE(inner_.closed());
  EXPECT_EQ(ClientReads(), "* BYE\r\n");
  EXPECT_EQ(client_.last_error(), SSL_ERROR_ZERO_RETURN);
}

TEST_P(TlsTransportTest, ReleasedSslGoesOnInANewTransport) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  inner_.Feed(client_.Seal("a1 LOGIN u p\r\n"));
  ASSERT_EQ(handler_.data(), "a1 LOGIN u p\r\n");

  // The shard hand-over: pause, let the receive in flight land, detach,
  // release.
  tls_->SetReading(false);
  const std::string first = client_.Seal("a1b NOOP\r\n");
  const std::string second = client_.Seal("a2 NOOP\r\n");
  const size_t half = second.size() / 2;
  inner_.Feed(first + second.substr(0, half));
  inner_.Detach();
  SSL* ssl = tls_->ReleaseSsl();
  Forget();
  ASSERT_EQ(ssl, server_ssl_);
  EXPECT_EQ(handler_.data(), "a1 LOGIN u p\r\n");
  EXPECT_FALSE(handler_.closed());
  EXPECT_FALSE(inner_.closed());
  EXPECT_FALSE(inner_.aborted());

  // The other shard: a new socket, the same TLS session.
  FakeInner inner2;
  RecordingHandler handler2;
  auto* tls2 = new TlsTransport(&inner2, ssl);
  EXPECT_NE(inner2.handler(), nullptr);
  tls2->SetHandler(&handler2);  // the buffered ciphertext is delivered now
  ASSERT_FALSE(handler2.closed()) << handler2.reason();
  EXPECT_EQ(handler2.data(), "a1b NOOP\r\n");
  inner2.Feed(absl::string_view(second).substr(half));
  EXPECT_EQ(handler2.data(), "a1b NOOP\r\na2 NOOP\r\n");
  tls2->Write("a1 OK LOGIN completed\r\n");  // no handshake queueing any more
  client_.Receive(inner2.TakeWritten());
  EXPECT_EQ(client_.Read(), "a1 OK LOGIN completed\r\n");
  tls2->Close();
  EXPECT_TRUE(inner2.closed());
  client_.Receive(inner2.TakeWritten());
  client_.Read();
  EXPECT_EQ(client_.last_error(), SSL_ERROR_ZERO_RETURN);
}

// The premise of the next test: a drained memory BIO keeps its capacity, so
// only the transport giving the buffer back can make it zero.
TEST(MemoryBioTest, DrainedBioKeepsItsCapacity) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  const std::string data = Pattern(8 * 1024);
  ASSERT_EQ(BIO_write(bio.get(), data.data(), static_cast<int>(data.size())),
            static_cast<int>(data.size()));
  std::string out(data.size(), '\0');
  ASSERT_EQ(BIO_read(bio.get(), out.data(), static_cast<int>(out.size())),
            static_cast<int>(out.size()));
  EXPECT_EQ(BIO_pending(bio.get()), 0u);
  EXPECT_GE(BioCapacity(bio.get()), data.size());
}

TEST_P(TlsTransportTest, IdleConnectionBiosHoldNoStorage) {
  ASSERT_NO_FATAL_FAILURE(Connect());
  // The handshake went through both BIOs (certificate out, ClientHello in).
  EXPECT_TRUE(BiosHoldNoStorage(server_ssl_));

  // A burst each way, larger than any record.
  const std::string down = Pattern(256 * 1024);
  tls_->Write(down);
  EXPECT_EQ(ClientReads(), down);
  const std::string up = Pattern(128 * 1024);
  inner_.Feed(client_.Seal(up));
  EXPECT_EQ(handler_.data(), up);
  EXPECT_TRUE(BiosHoldNoStorage(server_ssl_));

  // Half a record: BoringSSL takes it into its own buffer, the BIO is empty
  // again.
  const std::string record = client_.Seal("a1 NOOP\r\n");
  inner_.Feed(absl::string_view(record).substr(0, record.size() / 2));
  EXPECT_TRUE(BiosHoldNoStorage(server_ssl_));
  inner_.Feed(absl::string_view(record).substr(record.size() / 2));
  EXPECT_EQ(handler_.data(), up + "a1 NOOP\r\n");
  EXPECT_TRUE(BiosHoldNoStorage(server_ssl_));

  // The storage comes back for the next burst.
  tls_->Write(down);
  EXPECT_EQ(ClientReads(), down);
  inner_.Feed(client_.Seal(up));
  EXPECT_EQ(handler_.data(), up + "a1 NOOP\r\n" + up);
  EXPECT_TRUE(BiosHoldNoStorage(server_ssl_));
}

std::string VersionName(const ::testing::TestParamInfo<uint16_t>& info) {
  return info.param == TLS1_3_VERSION ? "Tls13" : "Tls12";
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsTransportTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         VersionName);

}  // namespace
}  // namespace pimap::tls
