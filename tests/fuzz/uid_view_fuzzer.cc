// libFuzzer target: sequence sets (core/imap/sequence_set) and their
// resolution against a device's MSN view (core/session/uid_view). The first
// two bytes give the length of an operation script (3 bytes an operation:
// insert or erase a UID, or insert a run of every other UID) that builds the
// view alongside a sorted-vector model; the rest is a sequence-set text
// (up to 8, space separated). Invariants: Insert/Erase answer the model's MSNs;
// size, max_uid, UidAt, MsnOf(UidAt(i)) == i and Contains agree with the model;
// Serialize/Parse round-trips, and UidView::Parse accepts only canonical text;
// SequenceSet::ToString re-parses to the same set; Resolve in MSN and UID
// mode equals a brute-force evaluation of Contains over the model.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/imap/sequence_set.h"
#include "core/session/uid_view.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pimap::imap::SequenceSet;
using pimap::session::UidView;
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// The model: the view's UIDs, ascending (a sorted vector: positions are MSNs).
using Model = std::vector<uint32_t>;

uint32_t UidFrom(uint8_t op, uint8_t a, uint8_t b) {
  switch ((op >> 1) & 3) {
    case 0:
      return a;  // dense and small (0 is refused)
    case 1:
      return (static_cast<uint32_t>(a) << 8 | b) + 1;
    case 2:
      return static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(b) << 8 |
             op;
    default:
      return 0xFFFFFFFFu - a;  // next to the top
  }
}

void Apply(UidView& view, Model& model, uint8_t op, uint32_t uid) {
  const auto it = std::lower_bound(model.begin(), model.end(), uid);
  const bool present = it != model.end() && *it == uid;
  const uint32_t position = static_cast<uint32_t>(it - model.begin()) + 1;
  if ((op & 1) == 0) {
    const std::optional<uint32_t> msn = view.Insert(uid);
    if (uid == 0 || present) {
      FUZZ_CHECK(!msn.has_value());
      return;
    }
    model.insert(it, uid);
    FUZZ_CHECK(msn.has_value() && *msn == position);
  } else {
    const std::optional<uint32_t> msn = view.Erase(uid);
    if (!present) {
      FUZZ_CHECK(!msn.has_value());
      return;
    }
    FUZZ_CHECK(msn.has_value() && *msn == position);
    model.erase(it);
  }
}

// Ascending UIDs as disjoint, non-adjacent ranges.
Ranges Compress(const std::vector<uint32_t>& uids) {
  Ranges out;
  for (uint32_t u : uids) {
    if (!out.empty() && out.back().second != 0xFFFFFFFFu &&
        out.back().second + 1 == u) {
      out.back().second = u;
    } else {
      out.emplace_back(u, u);
    }
  }
  return out;
}

void CheckView(const UidView& view, const Model& model) {
  FUZZ_CHECK(view.size() == model.size());
  FUZZ_CHECK(view.max_uid() == (model.empty() ? 0 : model.back()));
  FUZZ_CHECK(!view.UidAt(0).has_value());
  FUZZ_CHECK(!view.UidAt(static_cast<uint32_t>(model.size()) + 1).has_value());
  uint32_t msn = 0;
  for (uint32_t uid : model) {
    ++msn;
    FUZZ_CHECK(view.UidAt(msn) == uid);
    FUZZ_CHECK(view.MsnOf(uid) == msn);
    FUZZ_CHECK(view.Contains(uid));
    if (uid > 1 && (msn == 1 || model[msn - 2] != uid - 1)) {
      FUZZ_CHECK(!view.Contains(uid - 1) && !view.MsnOf(uid - 1).has_value());
    }
  }
  const Ranges ranges = view.Ranges();
  FUZZ_CHECK(ranges == Compress(model));
  FUZZ_CHECK(view.range_count() == ranges.size());
  const std::string text = view.Serialize();
  auto parsed = UidView::Parse(text);
  FUZZ_CHECK(parsed.ok() && parsed->Ranges() == ranges);
  FUZZ_CHECK(UidView::FromSortedUids(model).Ranges() == ranges);
}

void CheckSet(absl::string_view text, const UidView& view, const Model& model) {
  // A checkpoint's view text: only the canonical form is accepted.
  if (auto v = UidView::Parse(text); v.ok()) {
    FUZZ_CHECK(v->Serialize() == text);
  }
  auto set = SequenceSet::Parse(text);
  if (!set.ok()) return;
  auto again = SequenceSet::Parse(set->ToString());
  FUZZ_CHECK(again.ok() && again->ranges() == set->ranges() &&
             again->is_saved_result() == set->is_saved_result());
  // Brute force: MSN mode names MSNs 1..size with "*" = size; UID mode names
  // the view's UIDs with "*" = max_uid.
  std::vector<uint32_t> by_msn, by_uid;
  if (!set->is_saved_result() && !model.empty()) {
    const uint32_t size = static_cast<uint32_t>(model.size());
    const uint32_t max_uid = model.back();
    uint32_t msn = 0;
    for (uint32_t uid : model) {
      ++msn;
      if (set->Contains(msn, size)) by_msn.push_back(uid);
      if (set->Contains(uid, max_uid)) by_uid.push_back(uid);
    }
  }
  FUZZ_CHECK(view.Resolve(*set, false) == Compress(by_msn));
  FUZZ_CHECK(view.Resolve(*set, true) == Compress(by_uid));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t script = static_cast<size_t>(data[0]) | data[1] << 8;
  data += 2;
  size -= 2;
  // At most 128 operations: each costs a chunk refresh (up to kChunkMax
  // ranges), and runs still fill the view.
  script = std::min({script - script % 3, size - size % 3, size_t{384}});
  UidView view;
  Model model;
  // Bounded so that an execution stays fast (the model's positions are
  // checks are linear): 512 UIDs as every other UID still make 4 chunks.
  constexpr size_t kMaxUids = 512;
  for (size_t i = 0; i < script && model.size() < kMaxUids; i += 3) {
    const uint8_t op = data[i];
    const uint32_t uid = UidFrom(op, data[i + 1], data[i + 2]);
    if ((op & 0x18) == 0x18) {
      // A run of every other UID: many ranges (chunk splits) from few bytes.
      const uint32_t run = data[i + 2] & 63;
      for (uint32_t k = 0; k < run && uid <= 0xFFFFFFFFu - 2 * k; ++k) {
        Apply(view, model, op & ~1, uid + 2 * k);
      }
    } else {
      Apply(view, model, op, uid);
    }
  }
  CheckView(view, model);
  const absl::string_view rest(reinterpret_cast<const char*>(data + script),
                               size - script);
  // A few sets per view: each is checked by brute force over the view.
  int sets = 0;
  for (absl::string_view text : absl::StrSplit(rest, ' ')) {
    if (++sets > 8) break;
    CheckSet(text, view, model);
  }
  return 0;
}
