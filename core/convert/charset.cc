// iconv-based charset conversion to UTF-8 (charset.h).
#include "core/convert/charset.h"

#include <errno.h>
#include <iconv.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pimap::convert {
namespace {

constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Closes the descriptor on every path.
class Iconv {
 public:
  explicit Iconv(const std::string& from)
      : cd_(iconv_open("UTF-8", from.c_str())) {}
  ~Iconv() {
    if (ok()) iconv_close(cd_);
  }
  bool ok() const { return cd_ != reinterpret_cast<iconv_t>(-1); }
  iconv_t get() const { return cd_; }

 private:
  iconv_t cd_;
};

}  // namespace

absl::StatusOr<std::string> ToUtf8(absl::string_view charset,
                                   absl::string_view text, size_t max_output) {
  std::string from = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(charset));
  if (from.empty()) from = "US-ASCII";
  Iconv cd(from);
  if (!cd.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown charset ", charset));
  }
  std::string out;
  char buffer[4096];
  char* in = const_cast<char*>(text.data());
  size_t in_left = text.size();
  auto too_large = [&] {
    return absl::ResourceExhaustedError(
        absl::StrCat("converted text exceeds ", max_output, " bytes"));
  };
  // Last round: in == null flushes a stateful charset's shift state.
  for (bool flushing = false;;) {
    char* o = buffer;
    size_t o_left = sizeof(buffer);
    const size_t r = flushing ? iconv(cd.get(), nullptr, nullptr, &o, &o_left)
                              : iconv(cd.get(), &in, &in_left, &o, &o_left);
    const int err = errno;
    out.append(buffer, sizeof(buffer) - o_left);
    if (out.size() > max_output) return too_large();
    if (r != static_cast<size_t>(-1)) {
      if (flushing) break;
      flushing = true;
      continue;
    }
    if (err == E2BIG) continue;
    if (err == EILSEQ || err == EINVAL) {
      // An invalid (or truncated, at the end) sequence: one byte skipped.
      out.append(kReplacement.data(), kReplacement.size());
      if (in_left == 0) break;
      ++in;
      --in_left;
      continue;
    }
    return absl::InternalError(absl::StrCat("iconv failed: errno ", err));
  }
  if (out.size() > max_output) return too_large();
  return out;
}

}  // namespace pimap::convert
