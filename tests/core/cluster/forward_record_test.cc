#include "core/cluster/forward_record.h"

#include <string>

#include "gtest/gtest.h"

namespace pimap::cluster {
namespace {

constexpr int64_t kNow = 1800000000;

ForwardRecord Sample() {
  ForwardRecord r;
  r.tag = "a1";
  r.user = "alice@example.org";
  r.device = "phone";
  r.password = std::string("p\0ss word\r\n", 11);
  r.client_id = "(\"name\" \"k9\")";
  r.terse = true;
  r.secure = true;
  r.hops = 1;
  r.client.peer.family = 4;
  r.client.peer.ip = {192, 0, 2, 7};
  r.client.peer.port = 51234;
  r.client.local.family = 6;
  r.client.local.ip[15] = 1;
  r.client.local.port = 143;
  r.client.conn = 77;
  r.issued_unix = kNow;
  return r;
}

TEST(ForwardRecordTest, RoundTrip) {
  const std::string line = EncodeForwardLine(Sample(), "secret");
  EXPECT_EQ(line.find("alice"), std::string::npos) << "record is encoded";
  const std::string input = line + "a2 NOOP\r\n";
  ForwardRecord r;
  size_t consumed = 0;
  std::string error;
  ASSERT_EQ(ParseForwardLine(input, "secret", kNow + 5, &r, &consumed, &error),
            ForwardParse::kComplete)
      << error;
  EXPECT_EQ(consumed, line.size());
  const ForwardRecord want = Sample();
  EXPECT_EQ(r.tag, want.tag);
  EXPECT_EQ(r.user, want.user);
  EXPECT_EQ(r.device, want.device);
  EXPECT_EQ(r.password, want.password);
  EXPECT_EQ(r.client_id, want.client_id);
  EXPECT_TRUE(r.terse);
  EXPECT_TRUE(r.secure);
  EXPECT_EQ(r.hops, 1);
  EXPECT_EQ(r.client.peer, want.client.peer);
  EXPECT_EQ(r.client.local, want.client.local);
  EXPECT_EQ(r.client.conn, 77u);
}

TEST(ForwardRecordTest, NeedsTheWholeLine) {
  const std::string line = EncodeForwardLine(Sample(), "secret");
  ForwardRecord r;
  size_t consumed = 0;
  std::string error;
  for (size_t n : {size_t{0}, size_t{3}, line.size() - 1}) {
    EXPECT_EQ(ParseForwardLine(line.substr(0, n), "secret", kNow, &r, &consumed,
                               &error),
              ForwardParse::kNeedMore)
        << n;
  }
}

TEST(ForwardRecordTest, RefusesWrongSecretTamperingAndStrangers) {
  std::string line = EncodeForwardLine(Sample(), "secret");
  ForwardRecord r;
  size_t consumed = 0;
  std::string error;
  EXPECT_EQ(ParseForwardLine(line, "other", kNow, &r, &consumed, &error),
            ForwardParse::kInvalid);
  EXPECT_NE(error.find("MAC"), std::string::npos);
  std::string tampered = line;
  tampered[12] = tampered[12] == 'A' ? 'B' : 'A';
  EXPECT_EQ(ParseForwardLine(tampered, "secret", kNow, &r, &consumed, &error),
            ForwardParse::kInvalid);
  EXPECT_EQ(ParseForwardLine("a1 LOGIN alice pw\r\n", "secret", kNow, &r,
                             &consumed, &error),
            ForwardParse::kInvalid);
  EXPECT_EQ(ParseForwardLine("XFORWARD1 " + std::string(20000, 'A'), "secret",
                             kNow, &r, &consumed, &error),
            ForwardParse::kInvalid);
}

TEST(ForwardRecordTest, RefusesOutsideTheReplayWindow) {
  const std::string line = EncodeForwardLine(Sample(), "secret");
  ForwardRecord r;
  size_t consumed = 0;
  std::string error;
  EXPECT_EQ(ParseForwardLine(line, "secret", kNow + kForwardReplayWindowS + 1,
                             &r, &consumed, &error),
            ForwardParse::kInvalid);
  EXPECT_EQ(ParseForwardLine(line, "secret", kNow - kForwardReplayWindowS - 1,
                             &r, &consumed, &error),
            ForwardParse::kInvalid);
}

TEST(ForwardRecordTest, RefusesTooManyHops) {
  ForwardRecord sample = Sample();
  sample.hops = kMaxForwardHops + 1;
  const std::string line = EncodeForwardLine(sample, "secret");
  ForwardRecord r;
  size_t consumed = 0;
  std::string error;
  EXPECT_EQ(ParseForwardLine(line, "secret", kNow, &r, &consumed, &error),
            ForwardParse::kInvalid);
}

}  // namespace
}  // namespace pimap::cluster
