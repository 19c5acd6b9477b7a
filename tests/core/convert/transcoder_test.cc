#include "core/convert/transcoder.h"

#include <future>
#include <mutex>
#include <vector>

#include "gtest/gtest.h"

namespace pimap::convert {
namespace {

PartType Part(std::string type, std::string subtype, std::string charset = "") {
  PartType p;
  p.type = std::move(type);
  p.subtype = std::move(subtype);
  p.charset = std::move(charset);
  return p;
}

TEST(TranscoderTest, ParsesConverterRules) {
  absl::StatusOr<ConverterRule> r = ParseConverterRule(
      "Image/PNG:image/jpeg=/usr/bin/convert png:- -resize 128x128 jpeg:-");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->from, "image/png");
  EXPECT_EQ(r->to, "image/jpeg");
  EXPECT_EQ(r->argv,
            (std::vector<std::string>{"/usr/bin/convert", "png:-", "-resize",
                                      "128x128", "jpeg:-"}));
  EXPECT_FALSE(ParseConverterRule("image/png:image/jpeg=convert").ok());
  EXPECT_FALSE(ParseConverterRule("image/png=/bin/cat").ok());
  EXPECT_FALSE(ParseConverterRule("image:image/jpeg=/bin/cat").ok());
  EXPECT_FALSE(ParseConverterRule("image/png:image/jpeg=").ok());
}

TEST(TranscoderTest, BuiltInConversions) {
  EXPECT_EQ(*Transcoder::ConvertBuiltIn(Part("text", "plain", "iso-8859-1"),
                                        "text/plain", "caf\xe9", 100),
            "caf\xc3\xa9");
  EXPECT_EQ(*Transcoder::ConvertBuiltIn(Part("text", "html", "iso-8859-1"),
                                        "text/plain", "<p>caf\xe9</p>", 100),
            "caf\xc3\xa9\n");
  EXPECT_EQ(*Transcoder::ConvertBuiltIn(Part("image", "png"), "image/png",
                                        std::string("\x89PNG\0", 5), 100),
            std::string("\x89PNG\0", 5));
  EXPECT_EQ(
      Transcoder::ConvertBuiltIn(Part("image", "png"), "text/plain", "x", 100)
          .status()
          .code(),
      absl::StatusCode::kNotFound);
}

// Runs the posted tasks on the test's thread, as a shard would.
class Inbox {
 public:
  Transcoder::Post poster() {
    return [this](absl::AnyInvocable<void()> task) {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
      return true;
    };
  }
  void RunUntil(const bool& done) {
    for (int i = 0; i < 1000 && !done; ++i) {
      std::vector<absl::AnyInvocable<void()>> tasks;
      {
        std::lock_guard<std::mutex> lock(mu_);
        tasks.swap(tasks_);
      }
      for (auto& t : tasks) t();
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  std::mutex mu_;
  std::vector<absl::AnyInvocable<void()>> tasks_;
};

TEST(TranscoderTest, ExternalConverterRunsOffThreadAndPostsBack) {
  Inbox inbox;
  TranscodeConfig config;
  config.rules.push_back(
      *ParseConverterRule("text/plain:text/x-upper=/usr/bin/tr a-z A-Z"));
  Transcoder t(config, inbox.poster());
  bool done = false;
  absl::StatusOr<std::string> got;
  const std::thread::id caller = std::this_thread::get_id();
  t.Convert(Part("text", "plain"), "text/x-upper", "hello",
            [&](absl::StatusOr<std::string> r) {
              EXPECT_EQ(std::this_thread::get_id(), caller);
              got = std::move(r);
              done = true;
            });
  EXPECT_FALSE(done);  // not inline
  inbox.RunUntil(done);
  ASSERT_TRUE(done);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "HELLO");
}

TEST(TranscoderTest, ExternalConverterLimits) {
  Inbox inbox;
  TranscodeConfig config;
  config.rules.push_back(
      *ParseConverterRule("image/png:image/jpeg=/bin/sleep 30"));
  config.rules.push_back(
      *ParseConverterRule("image/png:image/gif=/usr/bin/yes"));
  config.limits.timeout_ms = 200;
  config.limits.max_output_bytes = 1000;
  Transcoder t(config, inbox.poster());
  bool done = false;
  absl::StatusOr<std::string> got;
  t.Convert(Part("image", "png"), "image/jpeg", "x",
            [&](absl::StatusOr<std::string> r) {
              got = std::move(r);
              done = true;
            });
  inbox.RunUntil(done);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  done = false;
  t.Convert(Part("image", "png"), "image/gif", "x",
            [&](absl::StatusOr<std::string> r) {
              got = std::move(r);
              done = true;
            });
  inbox.RunUntil(done);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(TranscoderTest, WithoutPostOnlyBuiltIns) {
  TranscodeConfig config;
  config.rules.push_back(*ParseConverterRule("image/png:image/jpeg=/bin/cat"));
  Transcoder t(config, nullptr);
  EXPECT_FALSE(t.Supports(Part("image", "png"), "image/jpeg"));
  EXPECT_TRUE(t.Supports(Part("text", "html"), "text/plain"));
  bool done = false;
  t.Convert(Part("image", "png"), "image/jpeg", "x",
            [&](absl::StatusOr<std::string> r) {
              EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
              done = true;
            });
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace pimap::convert

namespace pimap::convert {
namespace {

TEST(TranscoderTest, LargeBuiltInConversionsRunOnTheWorker) {
  Inbox inbox;
  Transcoder t(TranscodeConfig{}, inbox.poster());
  std::string html;
  while (html.size() <= Transcoder::kInlineBytes) html += "<p>caf&eacute;</p>";
  bool done = false;
  absl::StatusOr<std::string> got;
  t.Convert(Part("text", "html", "utf-8"), "text/plain", html,
            [&](absl::StatusOr<std::string> r) {
              got = std::move(r);
              done = true;
            });
  EXPECT_FALSE(done);
  inbox.RunUntil(done);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->substr(0, 13), "caf\xc3\xa9\n\ncaf\xc3\xa9\n");
  // Small ones, and conversions that do not exist, answer at once.
  done = false;
  t.Convert(
      Part("text", "html"), "text/plain", "<b>x</b>",
      [&](absl::StatusOr<std::string> r) { done = r.ok() && *r == "x\n"; });
  EXPECT_TRUE(done);
  done = false;
  t.Convert(Part("image", "png"), "text/plain", html,
            [&](absl::StatusOr<std::string> r) {
              done = r.status().code() == absl::StatusCode::kNotFound;
            });
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace pimap::convert
