// Issue 14 on the shared login path (core/session/session_login.h): ID before
// login (client_id.h) and what is advertised before and after login
// (capabilities.h).
#include "core/session/session_login.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/imap/command.h"
#include "core/imap/framer.h"
#include "core/session/capabilities.h"
#include "core/session/client_id.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A whole command as the binding's router would parse it.
imap::Command Parse(absl::string_view text) {
  imap::CommandAssembler assembler(imap::ParserLimits{}, 1 << 20);
  imap::Framer framer(imap::Framer::Mode::kCommands, imap::ParserLimits{});
  struct Visitor : imap::Framer::Visitor {
    imap::CommandAssembler* a;
    bool OnLine(absl::string_view line,
                const imap::LiteralHeader* literal) override {
      EXPECT_TRUE(a->AddLine(line, literal).ok());
      return true;
    }
    bool OnLiteralData(absl::string_view chunk) override {
      EXPECT_TRUE(a->AddLiteralData(chunk).ok());
      return true;
    }
    bool OnEnd() override { return true; }
    bool OnError(const imap::FrameError&) override { return true; }
  } visitor;
  visitor.a = &assembler;
  framer.Feed(text, visitor);
  absl::StatusOr<imap::Command> command = assembler.Finish();
  EXPECT_TRUE(command.ok()) << command.status();
  return command.ok() ? *command : imap::Command{};
}

PreAuthStep PreAuth(absl::string_view text) {
  return ExecutePreAuth(Parse(text), {false, true, true});
}

// ---- ID ---------------------------------------------------------------------

TEST(IdTest, AnsweredBeforeLoginAndTheFieldsKept) {
  PreAuthStep step = PreAuth(
      "a ID (\"name\" \"iOS Mail\" \"version\" \"17.1\" \"os\" NIL)\r\n");
  EXPECT_EQ(step.action, PreAuthStep::Action::kRespond);
  EXPECT_THAT(step.response,
              StartsWith("* ID (\"name\" \"pimap\" \"version\" "));
  EXPECT_THAT(step.response, HasSubstr("\r\na OK ID completed\r\n"));
  ASSERT_TRUE(step.client_id.has_value());
  EXPECT_EQ(*step.client_id,
            "\"name\" \"iOS Mail\" \"version\" \"17.1\" \"os\" NIL");
  step = PreAuth("b ID NIL\r\n");
  EXPECT_THAT(step.response, HasSubstr("b OK ID completed"));
  EXPECT_EQ(step.client_id, std::string());
}

TEST(IdTest, TheRfcLimitsAreEnforcedWithBad) {
  std::string pairs;
  for (int i = 0; i < 31; ++i) absl::StrAppend(&pairs, " \"f", i, "\" \"v\"");
  const std::string too_many = absl::StrCat("a ID (", pairs.substr(1), ")\r\n");
  const std::string long_field =
      absl::StrCat("b ID (\"", std::string(31, 'f'), "\" \"v\")\r\n");
  const std::string long_value = absl::StrCat("c ID (\"name\" {1025+}\r\n",
                                              std::string(1025, 'v'), ")\r\n");
  for (const std::string& bad :
       {too_many, long_field, long_value, std::string("d ID (\"name\")\r\n"),
        std::string("e ID \"name\"\r\n"), std::string("f ID\r\n"),
        std::string("g ID (\"name\" (\"x\"))\r\n")}) {
    PreAuthStep step = PreAuth(bad);
    EXPECT_THAT(step.response, HasSubstr(" BAD ")) << bad;
    EXPECT_FALSE(step.client_id.has_value()) << bad;
  }
  // Right at the limits is fine.
  std::string thirty;
  for (int i = 0; i < 30; ++i) absl::StrAppend(&thirty, " \"f", i, "\" \"v\"");
  EXPECT_THAT(
      PreAuth(absl::StrCat("h ID (", thirty.substr(1), ")\r\n")).response,
      HasSubstr("h OK"));
  EXPECT_THAT(
      PreAuth(absl::StrCat("i ID (\"", std::string(30, 'f'), "\" {1024+}\r\n",
                           std::string(1024, 'v'), ")\r\n"))
          .response,
      HasSubstr("i OK"));
}

TEST(IdTest, ProxyFieldsOfTheClientAreNeverPassedOn) {
  PreAuthStep step = PreAuth(
      "a ID (\"X-Originating-IP\" \"10.9.9.9\" \"name\" \"mail\" "
      "\"x-connected-ip\" \"10.0.0.1\" \"x-session-id\" \"s\" "
      "\"x-forward-user\" \"root\")\r\n");
  EXPECT_THAT(step.response, HasSubstr("a OK"));
  EXPECT_EQ(step.client_id, "\"name\" \"mail\"");
}

TEST(IdTest, ValuesAreSentOnAsQuotedStrings) {
  // 8-bit and CR/LF cannot be quoted: they become '?' (the store only logs
  // them); quotes and backslashes are escaped.
  PreAuthStep step = PreAuth(
      "a ID (\"name\" {9+}\r\nJos\xc3\xa9\r\nA\\ \"q\" \"a\\\"b\\\\\")\r\n");
  ASSERT_TRUE(step.client_id.has_value()) << step.response;
  EXPECT_EQ(*step.client_id, "\"name\" \"Jos????A\\\\\" \"q\" \"a\\\"b\\\\\"");
}

// ---- Capabilities -----------------------------------------------------------

TEST(CapabilitiesTest, LiteralMinusAndIdBeforeLogin) {
  const std::string caps = PreAuthCapabilities(true, false, true);
  EXPECT_THAT(caps, HasSubstr(" LITERAL- "));
  EXPECT_THAT(caps, Not(HasSubstr("LITERAL+")));
  EXPECT_THAT(caps, HasSubstr(" ID"));
}

TEST(CapabilitiesTest, PimapTokensOnlyInPimapSessions) {
  const std::vector<std::string> store = {"IMAP4rev1", "LITERAL+", "ID",
                                          "IDLE"};
  const std::string plain = PostAuthCapabilities(store, /*pimap=*/false);
  EXPECT_THAT(plain, Not(HasSubstr("XFILTER")));
  EXPECT_THAT(plain, Not(HasSubstr("XPIMAPPREF")));
  EXPECT_THAT(plain, HasSubstr(" XZIP"));
  EXPECT_EQ(plain, "IMAP4rev1 LITERAL+ IDLE XZIP ID COMPRESS=DEFLATE");
  const std::string pimap = PostAuthCapabilities(store, /*pimap=*/true);
  EXPECT_THAT(pimap, HasSubstr(" XFILTER XPIMAPPREF XZIP ID"));
  // ID is the gateway's own: listed even when the store lacks it.
  EXPECT_THAT(PostAuthCapabilities({"IMAP4rev1"}), HasSubstr(" ID"));
}

}  // namespace
}  // namespace pimap::session
