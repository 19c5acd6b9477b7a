// XPROVISION's answer (core/session/provision.h): the channels served, the
// accepted filter keys and preference values, the VAPID public key only over
// TLS (NO [PRIVACYREQUIRED] otherwise), and its arguments.
#include "core/session/provision.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::session {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<imap::Arg> Args(const std::string& text) {
  absl::StatusOr<imap::Command> cmd = imap::testing::ParseCommandBytes(
      absl::StrCat("t XPROVISION", text.empty() ? "" : " ", text, "\r\n"));
  EXPECT_TRUE(cmd.ok()) << cmd.status() << " for " << text;
  return cmd.ok() ? cmd->args : std::vector<imap::Arg>{};
}

TEST(ProvisionTest, ChannelsServedAndValuesAccepted) {
  ProvisionOffer offer;
  offer.channels = {"SMS", "WAP_PUSH"};
  absl::StatusOr<std::string> out =
      ProvisionLines(Args(""), "phone", offer, /*secure=*/false);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("* XPROVISION XPIMAPPREF PIMAP_OUTBAND_CHANNEL "
                              "(SMS WAP_PUSH NONE)\r\n"));
  EXPECT_THAT(*out, HasSubstr("* XPROVISION XPIMAPPREF PIMAP_EVENT_FILTER "
                              "(ALL NONE NEW)\r\n"));
  EXPECT_THAT(*out, HasSubstr("* XPROVISION XPIMAPPREF "
                              "PIMAP_INBAND_NEW_FORMAT (NONE ALL FAST FULL "
                              "ENVELOPE FLAGS"));
  EXPECT_THAT(*out, HasSubstr("BINARY.SIZE[])\r\n"));
  EXPECT_THAT(*out, HasSubstr("* XPROVISION XFILTER (ALL ANSWERED BCC"));
  EXPECT_THAT(*out, HasSubstr(" NOT OR FORWARDED UNFORWARDED "
                              "DAYSBEFORETODAY NONE)\r\n"));
  EXPECT_THAT(*out, Not(HasSubstr("VAPID")));
  // Nothing configured: only NONE.
  out = ProvisionLines(Args(""), "phone", ProvisionOffer(), false);
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(*out, HasSubstr("PIMAP_OUTBAND_CHANNEL (NONE)\r\n"));
}

TEST(ProvisionTest, KeyOnlyOverTls) {
  ProvisionOffer offer;
  offer.channels = {"WEBPUSH"};
  offer.vapid_public_key = "BKey_-123";
  absl::StatusOr<std::string> plain =
      ProvisionLines(Args(""), "phone", offer, /*secure=*/false);
  EXPECT_TRUE(absl::IsPermissionDenied(plain.status())) << plain.status();
  absl::StatusOr<std::string> tls =
      ProvisionLines(Args(""), "phone", offer, /*secure=*/true);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_THAT(*tls, HasSubstr("PIMAP_OUTBAND_CHANNEL (WEBPUSH NONE)\r\n"));
  EXPECT_THAT(*tls, HasSubstr("* XPROVISION PIMAP_VAPID_KEY (BKey_-123)\r\n"));
}

TEST(ProvisionTest, Arguments) {
  const ProvisionOffer offer;
  EXPECT_TRUE(ProvisionLines(Args("phone"), "phone", offer, false).ok());
  EXPECT_TRUE(ProvisionLines(Args("\"phone\" n1"), "phone", offer, false).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      ProvisionLines(Args("tablet"), "phone", offer, false).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ProvisionLines(Args("phone n1 x"), "phone", offer, false).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ProvisionLines(Args("(phone)"), "phone", offer, false).status()));
}

}  // namespace
}  // namespace pimap::session
