// Built-in conversions and the external converters' worker (transcoder.h).
#include "core/convert/transcoder.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/convert/charset.h"
#include "core/convert/html_text.h"

namespace pimap::convert {

absl::StatusOr<ConverterRule> ParseConverterRule(absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "expected FROM/TYPE:TO/TYPE=/path/to/program [args]");
  }
  absl::string_view types = text.substr(0, eq);
  const size_t colon = types.find(':');
  ConverterRule rule;
  std::string t, s;
  if (colon == absl::string_view::npos ||
      !SplitMediaType(types.substr(0, colon), &t, &s)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad source media type in \"", types, "\""));
  }
  rule.from = absl::StrCat(t, "/", s);
  if (!SplitMediaType(types.substr(colon + 1), &t, &s)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad target media type in \"", types, "\""));
  }
  rule.to = absl::StrCat(t, "/", s);
  for (absl::string_view a :
       absl::StrSplit(text.substr(eq + 1), ' ', absl::SkipEmpty())) {
    rule.argv.emplace_back(a);
  }
  if (rule.argv.empty() || rule.argv[0][0] != '/') {
    return absl::InvalidArgumentError(
        "the converter must be an absolute path (it runs without a shell)");
  }
  return rule;
}

Transcoder::Transcoder(TranscodeConfig config, Post post)
    : config_(std::move(config)), post_(std::move(post)) {}

Transcoder::~Transcoder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

const ConverterRule* Transcoder::FindRule(absl::string_view from,
                                          absl::string_view to) const {
  for (const ConverterRule& rule : config_.rules) {
    if (rule.from == from && rule.to == to) return &rule;
  }
  return nullptr;
}

bool Transcoder::Supports(const PartType& from, absl::string_view to) const {
  if (post_ != nullptr && FindRule(from.media(), to) != nullptr) return true;
  return ConvertBuiltIn(from, to, "", 0).status().code() !=
         absl::StatusCode::kNotFound;
}

absl::StatusOr<std::string> Transcoder::ConvertBuiltIn(
    const PartType& from, absl::string_view to, absl::string_view decoded,
    size_t max_output) {
  if (to == "text/plain" && from.type == "text") {
    // Text of any subtype is readable as text once in UTF-8; HTML is
    // stripped of its markup too.
    absl::StatusOr<std::string> utf8 =
        ToUtf8(from.charset, decoded,
               from.subtype == "html" ? max_output * 4 + 64 : max_output);
    if (!utf8.ok() || from.subtype != "html") return utf8;
    return HtmlToText(*utf8, max_output);
  }
  if (to == from.media()) {
    if (decoded.size() > max_output) {
      return absl::ResourceExhaustedError(
          absl::StrCat("part exceeds ", max_output, " bytes"));
    }
    return std::string(decoded);
  }
  return absl::NotFoundError(
      absl::StrCat("no conversion from ", from.media(), " to ", to));
}

void Transcoder::Convert(const PartType& from, absl::string_view to,
                         std::string decoded, Done done) {
  // An operator's converter wins over a built-in one (a better HTML renderer,
  // say).
  const ConverterRule* rule =
      post_ != nullptr ? FindRule(from.media(), to) : nullptr;
  if (rule == nullptr && (post_ == nullptr || decoded.size() <= kInlineBytes ||
                          ConvertBuiltIn(from, to, "", 0).status().code() ==
                              absl::StatusCode::kNotFound)) {
    done(ConvertBuiltIn(from, to, decoded, config_.limits.max_output_bytes));
    return;
  }
  // A refused job is answered by Enqueue itself (NO [LIMIT]).
  Enqueue(
      Job{rule, from, std::string(to), std::move(decoded), std::move(done)});
}

bool Transcoder::Enqueue(Job job) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() < config_.max_queued) {
      queue_.push_back(std::move(job));
      queued = true;
      if (!worker_.joinable()) worker_ = std::thread([this] { Work(); });
    }
  }
  if (!queued) {
    // Answered outside the lock: `done` runs the requester's code.
    job.done(absl::ResourceExhaustedError(
        "too many conversions waiting; try again later"));
    return false;
  }
  wake_.notify_one();
  return true;
}

void Transcoder::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // jobs left are dropped with their callbacks
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<std::string> result =
        job.rule != nullptr
            ? RunConverter(job.rule->argv, job.input, config_.limits)
            : ConvertBuiltIn(job.from, job.to, job.input,
                             config_.limits.max_output_bytes);
    // Back to the owner's thread; a full inbox is waited out, never dropped
    // (the requester would wait for its answer forever).
    auto task = [done = std::move(job.done),
                 result = std::move(result)]() mutable {
      done(std::move(result));
    };
    // Shared: a refused post leaves the task with us for the next try.
    auto holder = std::make_shared<absl::AnyInvocable<void()>>(std::move(task));
    while (!post_([holder] { (*holder)(); })) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

}  // namespace pimap::convert
