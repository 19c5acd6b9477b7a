// Transcoder: XCONVERT's conversions of one shard, built-in and external.
//
// Built in (linear and bounded; inline for a small part, on the worker for
// one of more than kInlineBytes, so that a large HTML part does not hold the
// shard's loop for tens of milliseconds): text/* in any charset glibc knows
// -> text/plain (UTF-8); text/html -> text/plain (html_text.h); and a part
// "converted" to its own type (the decoded octets). External: one
// operator-configured program per from -> to media type (ConverterRule, e.g.
// image/png -> image/jpeg = ImageMagick), run by RunConverter
// (converter_runner.h) on the transcoder's one worker thread, never on the
// shard's: the result comes back through `post`, the shard's inbox.
//
// Hazards: a result posted after the requester went away must find nobody —
// the requester's callback holds a weak reference of its own (DeviceDriver
// does). The worker runs one converter at a time; at most `max_queued` wait,
// more are refused (ResourceExhausted) rather than queued without bound.
#ifndef PIMAP_CORE_CONVERT_TRANSCODER_H_
#define PIMAP_CORE_CONVERT_TRANSCODER_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/convert/converter_runner.h"
#include "core/convert/mime_part.h"

namespace pimap::convert {

// One external converter: parts of media type `from` become `to` by running
// `argv` (stdin: the decoded part, stdout: the result).
struct ConverterRule {
  std::string from;  // "image/png", lower-cased
  std::string to;    // "image/jpeg"
  std::vector<std::string> argv;
};

// Parses "FROM:TO=/absolute/program arg ..." (the --converter option; the
// arguments split at spaces, no quoting, no shell).
absl::StatusOr<ConverterRule> ParseConverterRule(absl::string_view text);

struct TranscodeConfig {
  std::vector<ConverterRule> rules;
  RunLimits limits;
  // The largest part (as stored, before decoding) the gateway fetches to
  // convert; and the bound of a built-in conversion's output.
  size_t max_input_bytes = 8 << 20;
  size_t max_queued = 16;
};

class Transcoder {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;
  // Built-in conversions of larger parts go to the worker thread.
  static constexpr size_t kInlineBytes = 256 << 10;
  // Runs a task on the owner's thread (the shard's Post); false: refused.
  using Post = std::function<bool(absl::AnyInvocable<void()>)>;

  // `post` null: no external converters (only the built-in ones).
  Transcoder(TranscodeConfig config, Post post);
  ~Transcoder();  // waits for the running converter (bounded by its limits)
  Transcoder(const Transcoder&) = delete;
  Transcoder& operator=(const Transcoder&) = delete;

  const TranscodeConfig& config() const { return config_; }

  // Whether `from` -> `to` can be converted at all (built in or by a rule).
  bool Supports(const PartType& from, absl::string_view to) const;
  // Converts `decoded` (transfer encoding removed) from `from` to `to`.
  // Built-in conversions of small parts (and every one without `post`) call
  // `done` before returning; the others call it later, on the owner's
  // thread. NotFound: no such conversion.
  void Convert(const PartType& from, absl::string_view to, std::string decoded,
               Done done);

  // The built-in conversions alone (NotFound when there is none).
  static absl::StatusOr<std::string> ConvertBuiltIn(const PartType& from,
                                                    absl::string_view to,
                                                    absl::string_view decoded,
                                                    size_t max_output);

 private:
  struct Job {
    const ConverterRule* rule;  // null: a built-in conversion (`from`, `to`)
    PartType from;
    std::string to;
    std::string input;
    Done done;
  };
  // Queues `job` for the worker (false: too many waiting).
  bool Enqueue(Job job);
  const ConverterRule* FindRule(absl::string_view from,
                                absl::string_view to) const;
  void Work();

  const TranscodeConfig config_;
  const Post post_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> queue_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread worker_;     // started on the first external job
};

}  // namespace pimap::convert

#endif  // PIMAP_CORE_CONVERT_TRANSCODER_H_
