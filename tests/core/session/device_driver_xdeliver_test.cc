// XDELIVER in the session engine (device_driver_xdeliver.cc) against a fake
// store link and a fake submitter: the steps' store commands in order, the
// answers, nothing saved or flagged when the MTA refuses, the capability.
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/session/device_driver.h"
#include "core/session/mail_submitter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_fixture.h"
#include "tests/core/session/fake_submitter.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverTest;
using ::pimap::session::testing::FakeSubmitter;
using ::pimap::session::testing::kCaps;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class XdeliverTest : public DeviceDriverTest {
 protected:
  Device& ConnectSending() {
    registry_.set_submitter(&submitter_);
    config_.smtp_sender_domain = "example.org";
    devices_.push_back(std::make_unique<Device>());
    Device& d = *devices_.back();
    d.driver = new DeviceDriver(services(), &d.out, "alice", "phone");
    d.driver->Start(&d.link, "a1", "pw");
    EXPECT_EQ(d.link.TakeSent(), "~p1 ENABLE QRESYNC\r\n");
    d.link.Reply("* ENABLED QRESYNC");
    d.link.Complete("~p1", "OK Enabled");
    // XDELIVER is advertised with a submitter.
    EXPECT_THAT(d.out.Take(), HasSubstr(absl::StrCat("OK [CAPABILITY ", kCaps,
                                                     " XDELIVER] Logged in")));
    return d;
  }
  // "<tag> XDELIVER <args> {n+}" with `message` as its literal.
  void Xdeliver(Device& d, absl::string_view tag, absl::string_view args,
                absl::string_view message) {
    Run(d, absl::StrCat(tag, " XDELIVER ", args, " {", message.size(), "+}\r\n",
                        message));
  }

  FakeSubmitter submitter_;
};

constexpr char kNew[] =
    "To: bob@example.net\r\nBcc: boss@example.net\r\nSubject: hi\r\n\r\nHi\r\n";

TEST_F(XdeliverTest, NewIsSubmittedThenSavedWithAppendUid) {
  Device& d = ConnectSending();
  Xdeliver(d, "x1", "N SAVETO=Sent", kNew);
  // Nothing goes to the store before the MTA has the message.
  EXPECT_EQ(d.link.TakeSent(), "");
  ASSERT_EQ(submitter_.mails.size(), 1u);
  EXPECT_EQ(submitter_.mails[0].mail_from, "alice@example.org");
  EXPECT_THAT(submitter_.mails[0].recipients,
              ElementsAre("bob@example.net", "boss@example.net"));
  const std::string data = submitter_.mails[0].data;
  EXPECT_EQ(data.find("Bcc"), std::string::npos);
  EXPECT_EQ(d.out.Take(), "");
  submitter_.Finish(absl::OkStatus());
  EXPECT_EQ(d.link.TakeSent(),
            absl::StrCat("~p2 APPEND Sent (\\Seen) {", data.size(), "+}\r\n",
                         data, "\r\n"));
  d.link.Complete("~p2", "OK [APPENDUID 5 77] Append completed.");
  EXPECT_EQ(d.out.Take(), "x1 OK [APPENDUID 5 77] XDELIVER completed\r\n");
  EXPECT_FALSE(d.driver->holds_command_state());
}

TEST_F(XdeliverTest, RefusedLeavesNoCopy) {
  Device& d = ConnectSending();
  Xdeliver(d, "x1", "N SAVETO=Sent", kNew);
  submitter_.Finish(absl::FailedPreconditionError(
      "550 5.1.1 <bob@example.net>: no such user"));
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_EQ(d.out.Take(),
            "x1 NO 550 5.1.1 <bob@example.net>: no such user\r\n");
  // The session goes on.
  Run(d, "n NOOP");
  EXPECT_EQ(d.link.TakeSent(), "~p2 NOOP\r\n");
}

TEST_F(XdeliverTest, ReplyFetchesQuotesAndFlags) {
  Device& d = ConnectSending();
  SelectInbox(d);
  const std::string original =
      "From: Ann <ann@example.net>\r\nSubject: plans\r\n\r\nMeet at 3?\r\n";
  Xdeliver(d, "r1", "R 9 N",
           "To: ann@example.net\r\nSubject: Re: plans\r\n\r\nYes\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (BODY.PEEK[])\r\n");
  d.link.Reply(absl::StrCat("* 2 FETCH (UID 9 BODY[] {", original.size(),
                            "}\r\n", original, ")"));
  d.link.Complete("~p4", "OK Fetch completed.");
  ASSERT_EQ(submitter_.mails.size(), 1u);
  EXPECT_THAT(submitter_.mails[0].data,
              HasSubstr("Yes\r\n\r\nAnn <ann@example.net> wrote:\r\n"
                        "> Meet at 3?\r\n"));
  // The FETCH is the gateway's own: the device saw nothing of it.
  EXPECT_EQ(d.out.Take(), "");
  submitter_.Finish(absl::OkStatus());
  EXPECT_EQ(d.link.TakeSent(),
            "~p5 UID STORE 9 +FLAGS.SILENT (\\Answered)\r\n");
  d.link.Complete("~p5", "OK Store completed.");
  EXPECT_EQ(d.out.Take(), "r1 OK XDELIVER completed\r\n");
}

TEST_F(XdeliverTest, MissingOriginalAndRules) {
  Device& d = ConnectSending();
  SelectInbox(d);
  Xdeliver(d, "r1", "F 99 Y", "To: ann@example.net\r\n\r\nFYI\r\n");
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 99 (BODY.PEEK[])\r\n");
  d.link.Complete("~p4", "OK Fetch completed.");
  EXPECT_EQ(d.out.Take(),
            "r1 NO [NONEXISTENT] No message with UID 99 in INBOX\r\n");
  // Another folder than the selected one needs a pooled link.
  Xdeliver(d, "r2", "F Archive 5 Y", "To: ann@example.net\r\n\r\nFYI\r\n");
  EXPECT_THAT(d.out.Take(), StartsWith("r2 NO [CANNOT]"));
  Xdeliver(d, "s1", "N", "From: eve@example.org\r\nTo: a@b.c\r\n\r\nx\r\n");
  EXPECT_EQ(d.out.Take(), "s1 NO From: must be alice@example.org\r\n");
  Xdeliver(d, "s2", "N 5", "To: a@b.c\r\n\r\nx\r\n");
  EXPECT_THAT(d.out.Take(), StartsWith("s2 BAD"));
  EXPECT_THAT(submitter_.mails, IsEmpty());
}

// A virtual folder (XPSEARCH) named as the original's mailbox or as SAVETO=
// is its backing folder: the store has no folder of that name.
TEST_F(XdeliverTest, VirtualFolderNamesItsBackingFolder) {
  Device& d = ConnectSending();
  SelectInbox(d);
  Run(d, "v XPSEARCH Starred FLAGGED");
  EXPECT_EQ(d.out.Take(), "v OK XPSEARCH completed\r\n");
  const std::string original = "From: ann@example.net\r\n\r\nMeet at 3?\r\n";
  Xdeliver(d, "r1", "R Starred 9 N SAVETO=Starred",
           "To: ann@example.net\r\n\r\nYes\r\n");
  // In the selected (backing) folder: on the device's own link.
  EXPECT_EQ(d.link.TakeSent(), "~p4 UID FETCH 9 (BODY.PEEK[])\r\n");
  d.link.Reply(absl::StrCat("* 2 FETCH (UID 9 BODY[] {", original.size(),
                            "}\r\n", original, ")"));
  d.link.Complete("~p4", "OK Fetch completed.");
  ASSERT_EQ(submitter_.mails.size(), 1u);
  submitter_.Finish(absl::OkStatus());
  EXPECT_THAT(d.link.TakeSent(), StartsWith("~p5 APPEND INBOX ("));
  d.link.Complete("~p5", "OK [APPENDUID 7 40] Append completed.");
  EXPECT_EQ(d.link.TakeSent(),
            "~p6 UID STORE 9 +FLAGS.SILENT (\\Answered)\r\n");
  d.link.Complete("~p6", "OK Store completed.");
  EXPECT_EQ(d.out.Take(), "r1 OK [APPENDUID 7 40] XDELIVER completed\r\n");
}

TEST_F(XdeliverTest, NotOfferedWithoutSubmitter) {
  Device& d = Connect();
  Login(d);  // kCaps: no XDELIVER
  Xdeliver(d, "x1", "N", kNew);
  EXPECT_THAT(d.out.Take(),
              StartsWith("x1 NO [CANNOT] XDELIVER is not enabled"));
  EXPECT_EQ(d.link.TakeSent(), "");
}

}  // namespace
}  // namespace pimap::session
