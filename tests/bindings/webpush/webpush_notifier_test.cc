// The Web Push channel's pure parts (bindings/webpush/webpush_notifier.h):
// which endpoint addresses count as internal (refused without
// --outband-allow-private), the wake-up's plaintext, and the per-device Topic.
// Delivery itself is covered end to end by tests/integration/test_outband.py.
#include "bindings/webpush/webpush_notifier.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "core/engine/resolver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::webpush {
namespace {

sockaddr_storage Address(const char* text) {
  sockaddr_storage a{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text, &v6->sin6_addr), 1) << text;
    v6->sin6_family = AF_INET6;
  }
  return a;
}

TEST(WebPushNotifierTest, InternalAddresses) {
  for (const char* internal :
       {"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
        "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1",
        "ff02::1", "::ffff:127.0.0.1", "::ffff:10.1.2.3"}) {
    EXPECT_TRUE(engine::IsInternalAddress(Address(internal))) << internal;
  }
  for (const char* external :
       {"8.8.8.8", "172.32.0.1", "192.169.0.1", "100.128.0.1", "1.1.1.1",
        "2001:4860:4860::8888", "2a00:1450::1", "::ffff:8.8.8.8"}) {
    EXPECT_FALSE(engine::IsInternalAddress(Address(external))) << external;
  }
}

TEST(WebPushNotifierTest, WakeUpBodyNamesNoMessage) {
  session::WakeUp w;
  w.user = "alice";
  w.device = "phone";
  w.folder = "INBOX";
  w.new_messages = 3;
  w.uidnext = 42;
  EXPECT_EQ(WakeUpBody(w), R"({"folder":"INBOX","count":3,"uidnext":42})");
  w.folder = "a\"b\\c\x01";
  EXPECT_EQ(WakeUpBody(w),
            R"({"folder":"a\"b\\c\u0001","count":3,"uidnext":42})");
}

TEST(WebPushNotifierTest, FullPayloadCarriesTheHeadline) {
  session::WakeUp w;
  w.folder = "INBOX";
  w.new_messages = 2;
  w.uidnext = 43;
  w.headline_uid = 42;
  w.headline = session::MakeHeadline("=?UTF-8?B?R3LDvMOfZQ==?=\r\n \"quoted\"",
                                     "=?UTF-8?Q?J=C3=BCrgen?= <j@example.org>");
  EXPECT_EQ(WakeUpBody(w),
            R"({"folder":"INBOX","count":2,"uidnext":43,"uid":42,)"
            R"("subject":"Grüße \"quoted\"","from":"Jürgen <j@example.org>"})");
  // At the bound, every byte escaped: still far below a 4096-byte record.
  w.headline =
      session::MakeHeadline(std::string(5000, '"'), std::string(5000, '\\'));
  EXPECT_EQ(w.headline->subject.size(), session::kMaxHeadlineBytes);
  EXPECT_LT(WakeUpBody(w).size(), 1200u);
}

TEST(WebPushNotifierTest, TopicPerDevice) {
  const std::string a = DeviceTopic("alice", "phone");
  EXPECT_EQ(a.size(), 32u);
  EXPECT_THAT(a, ::testing::MatchesRegex("[A-Za-z0-9_-]+"));
  EXPECT_EQ(a, DeviceTopic("alice", "phone"));
  EXPECT_NE(a, DeviceTopic("alice", "tablet"));
  EXPECT_NE(a, DeviceTopic("alicephone", ""));
  EXPECT_EQ(a.find("alice"), std::string::npos);
}

}  // namespace
}  // namespace pimap::webpush
