// DeviceDriver: XCONVERT / XUIDCONVERT / UID XCONVERT against a fake store
// link: the store FETCH it sends, the answer to the device, errors, and an
// external converter's result arriving after the device went away
// (fixture: device_driver_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/convert/transcoder.h"
#include "core/session/device_driver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/session/device_driver_fixture.h"

namespace pimap::session {
namespace {

using ::pimap::session::testing::Device;
using ::pimap::session::testing::DeviceDriverTest;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ConvertTest : public DeviceDriverTest {
 protected:
  ConvertTest() {
    convert::TranscodeConfig config;
    config.max_input_bytes = 100;
    config.rules.push_back(
        *convert::ParseConverterRule("image/png:image/jpeg=/bin/cat"));
    transcoder_ = std::make_unique<convert::Transcoder>(
        config, [this](absl::AnyInvocable<void()> task) {
          std::lock_guard<std::mutex> lock(mu_);
          posted_.push_back(std::move(task));
          return true;
        });
  }

  Device& ConnectConverting() {
    devices_.push_back(std::make_unique<Device>());
    Device& d = *devices_.back();
    DriverServices s = services();
    s.transcoder = transcoder_.get();
    d.driver = new DeviceDriver(s, &d.out, "alice", "phone");
    return d;
  }

  // Runs what the transcoder's worker posted, waiting for it a while.
  bool RunPosted() {
    for (int i = 0; i < 500; ++i) {
      std::vector<absl::AnyInvocable<void()>> tasks;
      {
        std::lock_guard<std::mutex> lock(mu_);
        tasks.swap(posted_);
      }
      if (!tasks.empty()) {
        for (auto& t : tasks) t();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // The store's answer to the part FETCH of UID `uid`.
  static void AnswerPart(Device& d, int msn, int uid, absl::string_view section,
                         absl::string_view header, absl::string_view body) {
    d.link.ReplyPieces(
        {absl::StrCat("* ", msn, " FETCH (UID ", uid, " BODY[", section,
                      ".MIME] {", header.size(), "}\r\n"),
         absl::StrCat(header, " BODY[", section, "]<0> {", body.size(),
                      "}\r\n"),
         absl::StrCat(body, ")\r\n")});
    d.link.CompleteLast("OK Fetch completed");
  }

  std::mutex mu_;
  std::vector<absl::AnyInvocable<void()>> posted_;
  std::unique_ptr<convert::Transcoder> transcoder_;
};

TEST_F(ConvertTest, ConvertsALatin1PartByMsn) {
  Device& d = ConnectConverting();
  Login(d);
  SelectInbox(d);  // UIDs 4, 9, 12
  Run(d, "x XCONVERT 2 BODY[1] as text/plain");
  EXPECT_EQ(d.link.TakeSent(),
            "~p4 UID FETCH 9 (BODY.PEEK[1.MIME] BODY.PEEK[1]<0.101>)\r\n");
  AnswerPart(d, 2, 9, "1",
             "Content-Type: text/plain; charset=iso-8859-1\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
             "caf=E9");
  EXPECT_EQ(d.out.Take(),
            "* 2 XCONVERT {5}\r\ncaf\xc3\xa9\r\nx OK XCONVERT completed\r\n");
}

TEST_F(ConvertTest, UidFormsAndBinaryOutput) {
  Device& d = ConnectConverting();
  Login(d);
  SelectInbox(d);
  Run(d, "u UID XCONVERT 12 BODY[2] as image/png");
  EXPECT_THAT(d.link.TakeSent(), HasSubstr("UID FETCH 12 "));
  AnswerPart(d, 3, 12, "2",
             "Content-Type: image/png\r\nContent-Transfer-Encoding: "
             "base64\r\n\r\n",
             "AAEC");
  EXPECT_EQ(d.out.Take(), std::string("* 3 XCONVERT ~{3}\r\n\0\1\2\r\n", 24) +
                              "u OK UID XCONVERT completed\r\n");
  Run(d, "v XUIDCONVERT 5 BODY[1] as text/plain");  // not in the view
  EXPECT_EQ(d.link.TakeSent(), "");
  EXPECT_THAT(d.out.Take(), StartsWith("v NO [NONEXISTENT]"));
}

TEST_F(ConvertTest, ErrorsAndLimits) {
  Device& d = ConnectConverting();
  Login(d);
  Run(d, "n XCONVERT 1 BODY[1] as text/plain");
  EXPECT_THAT(d.out.Take(), StartsWith("n BAD "));  // nothing selected
  SelectInbox(d);
  Run(d, "b XCONVERT 1 BODY[x] as text/plain");
  EXPECT_THAT(d.out.Take(), StartsWith("b BAD "));
  Run(d, "m XCONVERT 4 BODY[1] as text/plain");
  EXPECT_THAT(d.out.Take(), StartsWith("m BAD "));  // no MSN 4
  Run(d, "p XCONVERT 1 BODY[1] as application/pdf");
  AnswerPart(d, 1, 4, "1", "Content-Type: image/png\r\n\r\n", "x");
  EXPECT_THAT(d.out.Take(), StartsWith("p NO [BADPARAMETERS] "));
  Run(d, "g XCONVERT 1 BODY[1] as text/plain");
  AnswerPart(d, 1, 4, "1", "", "");
  EXPECT_THAT(d.out.Take(), StartsWith("g NO [NONEXISTENT] "));
  Run(d, "l XCONVERT 1 BODY[1] as text/plain");
  AnswerPart(d, 1, 4, "1", "\r\n", std::string(101, 'a'));
  EXPECT_THAT(d.out.Take(), StartsWith("l NO [LIMIT] "));
  Run(d, "s XCONVERT 1 BODY[1] as text/plain");
  d.link.CompleteLast("NO Message was expunged");
  EXPECT_EQ(d.out.Take(), "s NO [CANNOT] Message was expunged\r\n");
  // The session goes on.
  Run(d, "o NOOP");
  d.link.CompleteLast("OK NOOP completed");
  EXPECT_EQ(d.out.Take(), "o OK NOOP completed\r\n");
}

TEST_F(ConvertTest, ExternalConverterAnswersLater) {
  Device& d = ConnectConverting();
  Login(d);
  SelectInbox(d);
  Run(d, "e XCONVERT 1 BODY[1] as image/jpeg");
  AnswerPart(d, 1, 4, "1", "Content-Type: image/png\r\n\r\n", "JPEG!");
  EXPECT_EQ(d.out.Take(), "");  // converting on the worker thread
  ASSERT_TRUE(RunPosted());
  EXPECT_EQ(d.out.Take(),
            "* 1 XCONVERT ~{5}\r\nJPEG!\r\ne OK XCONVERT completed\r\n");
}

TEST_F(ConvertTest, LateResultFindsTheDeviceGone) {
  Device& d = ConnectConverting();
  Login(d);
  SelectInbox(d);
  Run(d, "e XCONVERT 1 BODY[1] as image/jpeg");
  AnswerPart(d, 1, 4, "1", "Content-Type: image/png\r\n\r\n", "JPEG!");
  Drop(d);
  ASSERT_TRUE(RunPosted());  // finds nobody: no crash, nothing written
  EXPECT_EQ(d.out.Take(), "");
}

TEST_F(ConvertTest, WithoutATranscoderConversionIsRefused) {
  Device& d = Connect();
  Login(d);
  SelectInbox(d);
  Run(d, "x XCONVERT 1 BODY[1] as text/plain");
  EXPECT_THAT(d.out.Take(), StartsWith("x NO [CANNOT] "));
}

// A flag change the store reports while XCONVERT fetches the part is news of
// the device's folder (journaled and told), not dropped with the answer:
// where no watch reports it (the store's pushes alone: they are hints).
TEST_F(ConvertTest, FlagChangeDuringThePartsFetchIsNotLost) {
  config_.watch = false;
  config_.pushes = true;
  Device& d = ConnectConverting();
  Login(d);
  SelectInbox(d);
  Run(d, "x XCONVERT 2 BODY[1] as text/plain");
  d.link.TakeSent();
  d.link.Reply("* 1 FETCH (UID 4 FLAGS (\\Flagged))");
  AnswerPart(d, 2, 9, "1", "Content-Type: text/plain\r\n\r\n", "hi");
  std::string out = d.out.Take();
  Run(d, "n2 NOOP");
  d.link.CompleteLast("OK NOOP completed");
  out += d.out.Take();
  EXPECT_THAT(out, HasSubstr("* 1 FETCH (UID 4 FLAGS (\\Flagged))"));
}

}  // namespace
}  // namespace pimap::session
