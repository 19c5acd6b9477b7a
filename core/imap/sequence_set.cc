// Sequence set parsing, membership and formatting.
#include "core/imap/sequence_set.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace pimap::imap {
namespace {

// Parses nz-number or "*" at text[*i].
bool ParseSeqNumber(absl::string_view text, size_t* i, uint32_t* out) {
  if (*i < text.size() && text[*i] == '*') {
    ++*i;
    *out = kStar;
    return true;
  }
  if (*i >= text.size() || text[*i] < '1' || text[*i] > '9') return false;
  uint64_t value = 0;
  while (*i < text.size() && text[*i] >= '0' && text[*i] <= '9') {
    value = value * 10 + static_cast<uint64_t>(text[*i] - '0');
    if (value >= kStar) return false;
    ++*i;
  }
  *out = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

absl::StatusOr<SequenceSet> SequenceSet::Parse(absl::string_view text) {
  SequenceSet set;
  if (text == "$") {
    set.saved_result_ = true;
    return set;
  }
  size_t i = 0;
  while (true) {
    SeqRange r;
    if (!ParseSeqNumber(text, &i, &r.first)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid sequence set: ", text.substr(0, 64)));
    }
    r.last = r.first;
    if (i < text.size() && text[i] == ':') {
      ++i;
      if (!ParseSeqNumber(text, &i, &r.last)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid sequence set: ", text.substr(0, 64)));
      }
      if (r.first > r.last) std::swap(r.first, r.last);
    }
    set.ranges_.push_back(r);
    if (i == text.size()) return set;
    if (text[i] != ',') {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid sequence set: ", text.substr(0, 64)));
    }
    ++i;
  }
}

bool SequenceSet::Contains(uint32_t n, uint32_t star_value) const {
  for (const SeqRange& r : ranges_) {
    uint32_t a = r.first == kStar ? star_value : r.first;
    uint32_t b = r.last == kStar ? star_value : r.last;
    if (a > b) std::swap(a, b);
    if (n >= a && n <= b) return true;
  }
  return false;
}

std::string SequenceSet::ToString() const {
  if (saved_result_) return "$";
  std::string out;
  auto num = [&out](uint32_t v) {
    if (v == kStar) {
      out.push_back('*');
    } else {
      absl::StrAppend(&out, v);
    }
  };
  for (size_t k = 0; k < ranges_.size(); ++k) {
    if (k > 0) out.push_back(',');
    num(ranges_[k].first);
    if (ranges_[k].last != ranges_[k].first) {
      out.push_back(':');
      num(ranges_[k].last);
    }
  }
  return out;
}

}  // namespace pimap::imap
