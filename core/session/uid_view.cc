// UidView: chunked range list with a Fenwick tree over chunk counts. See the
// header for the representation and the cost of each operation.
#include "core/session/uid_view.h"

#include <algorithm>
#include <bit>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace pimap::session {
namespace {

constexpr size_t kBulkFill = UidView::kChunkMax * 3 / 4;

uint64_t Len(uint32_t first, uint32_t last) {
  return static_cast<uint64_t>(last) - first + 1;
}

}  // namespace

// --- Fenwick tree over chunk counts
// --------------------------------------------

uint64_t UidView::PrefixChunks(size_t n) const {
  // Node values are taken modulo 2^32: every true partial sum is <= size_,
  // which fits in uint32 because UIDs are 32-bit and 0 is never stored.
  uint32_t sum = 0;
  for (size_t i = n; i > 0; i &= i - 1) sum += fenwick_[i];
  return sum;
}

void UidView::FenwickAdd(size_t c, int64_t delta) {
  if (delta == 0) return;
  const uint32_t d = static_cast<uint32_t>(delta);  // wraps for negatives
  const size_t n = chunks_.size();
  for (size_t i = c + 1; i <= n; i += i & (~i + 1)) fenwick_[i] += d;
}

void UidView::FenwickPush(uint32_t value) {
  // Appending node i = n: it covers (i - lowbit(i), i], whose other members
  // already exist, so the new node is computable in O(log n) and no existing
  // node changes. This keeps appends at the end of a big view cheap.
  if (fenwick_.empty()) fenwick_.push_back(0);
  const size_t i = fenwick_.size();
  const size_t low = i & (~i + 1);
  const uint32_t covered =
      static_cast<uint32_t>(PrefixChunks(i - 1) - PrefixChunks(i - low));
  fenwick_.push_back(value + covered);
}

void UidView::RebuildIndex() {
  const size_t n = chunks_.size();
  chunk_first_.resize(n);
  fenwick_.assign(n == 0 ? 0 : n + 1, 0);
  for (size_t c = 0; c < n; ++c) {
    chunk_first_[c] = chunks_[c].ranges.front().first;
    fenwick_[c + 1] += chunks_[c].count();
    const size_t parent = (c + 1) + ((c + 1) & (~(c + 1) + 1));
    if (parent <= n) fenwick_[parent] += fenwick_[c + 1];
  }
}

// --- Positions
// -------------------------------------------------------------------

std::optional<size_t> UidView::ChunkFor(uint32_t uid) const {
  auto it = std::upper_bound(chunk_first_.begin(), chunk_first_.end(), uid);
  if (it == chunk_first_.begin()) return std::nullopt;
  return static_cast<size_t>(it - chunk_first_.begin()) - 1;
}

std::optional<UidView::Pos> UidView::FloorRange(uint32_t uid) const {
  std::optional<size_t> c = ChunkFor(uid);
  if (!c) return std::nullopt;
  const std::vector<Range>& rs = chunks_[*c].ranges;
  auto it =
      std::upper_bound(rs.begin(), rs.end(), uid,
                       [](uint32_t v, const Range& r) { return v < r.first; });
  // The chunk's first range starts at or below uid, so it != begin.
  return Pos{*c, static_cast<size_t>(it - rs.begin()) - 1};
}

std::optional<UidView::Pos> UidView::CeilRange(uint32_t uid) const {
  if (chunks_.empty()) return std::nullopt;
  std::optional<Pos> p = FloorRange(uid);
  if (!p) return Pos{0, 0};
  if (chunks_[p->chunk].ranges[p->range].last >= uid) return p;
  if (!Next(&*p)) return std::nullopt;
  return p;
}

bool UidView::Next(Pos* p) const {
  if (p->range + 1 < chunks_[p->chunk].ranges.size()) {
    ++p->range;
    return true;
  }
  if (p->chunk + 1 < chunks_.size()) {
    ++p->chunk;
    p->range = 0;
    return true;
  }
  return false;
}

uint32_t UidView::CountBefore(const Pos& p) const {
  return static_cast<uint32_t>(PrefixChunks(p.chunk) +
                               chunks_[p.chunk].before(p.range));
}

// --- Queries
// -------------------------------------------------------------------

bool UidView::Contains(uint32_t uid) const {
  std::optional<Pos> p = FloorRange(uid);
  return p && uid <= chunks_[p->chunk].ranges[p->range].last;
}

std::optional<uint32_t> UidView::MsnOf(uint32_t uid) const {
  std::optional<Pos> p = FloorRange(uid);
  if (!p) return std::nullopt;
  const Range& r = chunks_[p->chunk].ranges[p->range];
  if (uid > r.last) return std::nullopt;
  return CountBefore(*p) + (uid - r.first) + 1;
}

std::optional<uint32_t> UidView::UidAt(uint32_t msn) const {
  if (msn == 0 || msn > size_) return std::nullopt;
  // Fenwick descent: the chunk holding the msn-th UID.
  const size_t n = chunks_.size();
  size_t pos = 0;
  uint32_t rem = msn;
  for (size_t step = std::bit_floor(n); step > 0; step >>= 1) {
    if (pos + step <= n && fenwick_[pos + step] < rem) {
      pos += step;
      rem -= fenwick_[pos];
    }
  }
  const Chunk& ch = chunks_[pos];
  const size_t r = static_cast<size_t>(
      std::lower_bound(ch.cum.begin(), ch.cum.end(), rem) - ch.cum.begin());
  return ch.ranges[r].first + (rem - ch.before(r) - 1);
}

uint32_t UidView::max_uid() const {
  return chunks_.empty() ? 0 : chunks_.back().ranges.back().last;
}

std::vector<std::pair<uint32_t, uint32_t>> UidView::Ranges() const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  out.reserve(range_count_);
  for (const Chunk& ch : chunks_) {
    for (const Range& r : ch.ranges) out.emplace_back(r.first, r.last);
  }
  return out;
}

// --- Mutations
// -------------------------------------------------------------------

void UidView::Refresh(size_t c, size_t from) {
  Chunk& ch = chunks_[c];
  const uint32_t old_count = ch.cum.empty() ? 0 : ch.cum.back();
  ch.cum.resize(ch.ranges.size());
  for (size_t i = from; i < ch.ranges.size(); ++i) {
    ch.cum[i] = ch.before(i) + static_cast<uint32_t>(
                                   Len(ch.ranges[i].first, ch.ranges[i].last));
  }
  const uint32_t new_count = ch.cum.empty() ? 0 : ch.cum.back();
  FenwickAdd(c, static_cast<int64_t>(new_count) - old_count);
  if (!ch.ranges.empty()) chunk_first_[c] = ch.ranges.front().first;
}

void UidView::Rebalance(size_t c) {
  Chunk& ch = chunks_[c];
  if (ch.ranges.empty()) {
    chunks_.erase(chunks_.begin() + static_cast<ptrdiff_t>(c));
    if (c == chunks_.size()) {
      // The last chunk: dropping the last Fenwick node is exact (no other
      // node covers it), so erasing at the end stays O(1).
      chunk_first_.pop_back();
      fenwick_.pop_back();
      if (chunks_.empty()) fenwick_.clear();
    } else {
      RebuildIndex();
    }
    return;
  }
  if (ch.ranges.size() > kChunkMax) {
    const size_t half = ch.ranges.size() / 2;
    Chunk tail;
    tail.ranges.assign(ch.ranges.begin() + static_cast<ptrdiff_t>(half),
                       ch.ranges.end());
    ch.ranges.resize(half);
    ch.cum.resize(half);
    tail.cum.resize(tail.ranges.size());
    for (size_t i = 0; i < tail.ranges.size(); ++i) {
      tail.cum[i] =
          tail.before(i) +
          static_cast<uint32_t>(Len(tail.ranges[i].first, tail.ranges[i].last));
    }
    chunks_.insert(chunks_.begin() + static_cast<ptrdiff_t>(c) + 1,
                   std::move(tail));
    RebuildIndex();
    return;
  }
  // Merge a small chunk into its next neighbour when both fit in half a
  // chunk, so that erasures cannot leave many tiny chunks (which would make
  // the O(C) index rebuilds approach O(R)); half, so that a merge is never
  // followed at once by a split.
  if (ch.ranges.size() < kChunkMax / 4 && c + 1 < chunks_.size() &&
      ch.ranges.size() + chunks_[c + 1].ranges.size() <= kChunkMax / 2) {
    Chunk& next = chunks_[c + 1];
    const size_t from = ch.ranges.size();
    ch.ranges.insert(ch.ranges.end(), next.ranges.begin(), next.ranges.end());
    ch.cum.resize(ch.ranges.size());
    for (size_t i = from; i < ch.ranges.size(); ++i) {
      ch.cum[i] = ch.before(i) + static_cast<uint32_t>(Len(ch.ranges[i].first,
                                                           ch.ranges[i].last));
    }
    chunks_.erase(chunks_.begin() + static_cast<ptrdiff_t>(c) + 1);
    RebuildIndex();
  }
}

std::optional<uint32_t> UidView::Insert(uint32_t uid) {
  if (uid == 0) return std::nullopt;
  if (chunks_.empty()) {
    chunks_.push_back(Chunk{{Range{uid, uid}}, {1}});
    chunk_first_.push_back(uid);
    FenwickPush(1);
    size_ = 1;
    range_count_ = 1;
    return 1;
  }
  // Fast path: new mail arrives with ascending UIDs.
  {
    const size_t c = chunks_.size() - 1;
    Chunk& last = chunks_[c];
    Range& lr = last.ranges.back();
    if (uid > lr.last) {
      if (uid == lr.last + 1) {
        lr.last = uid;
        ++last.cum.back();
        FenwickAdd(c, 1);
      } else if (last.ranges.size() < kChunkMax) {
        last.ranges.push_back(Range{uid, uid});
        last.cum.push_back(last.cum.back() + 1);
        FenwickAdd(c, 1);
        ++range_count_;
      } else {
        chunks_.push_back(Chunk{{Range{uid, uid}}, {1}});
        chunk_first_.push_back(uid);
        FenwickPush(1);
        ++range_count_;
      }
      ++size_;
      return static_cast<uint32_t>(size_);
    }
  }
  std::optional<Pos> p = FloorRange(uid);
  if (p && uid <= chunks_[p->chunk].ranges[p->range].last) return std::nullopt;
  // uid is below max_uid here, so a successor range exists.
  Pos s = Pos{0, 0};
  if (p) {
    s = *p;
    Next(&s);
  }
  Range& succ = chunks_[s.chunk].ranges[s.range];
  const bool join_prev =
      p && chunks_[p->chunk].ranges[p->range].last + 1 == uid;
  const bool join_succ = succ.first == uid + 1;
  uint32_t msn;
  if (join_prev) {
    Range& prev = chunks_[p->chunk].ranges[p->range];
    msn = CountBefore(*p) + (uid - prev.first) + 1;
    if (join_succ) {
      // uid fills the only gap between two ranges: they become one.
      prev.last = succ.last;
      chunks_[s.chunk].ranges.erase(chunks_[s.chunk].ranges.begin() +
                                    static_cast<ptrdiff_t>(s.range));
      --range_count_;
      if (s.chunk == p->chunk) {
        Refresh(p->chunk, p->range);
      } else {
        Refresh(p->chunk, p->range);
        Refresh(s.chunk, 0);
        Rebalance(s.chunk);
      }
    } else {
      prev.last = uid;
      Refresh(p->chunk, p->range);
    }
  } else if (join_succ) {
    msn = CountBefore(s) + 1;
    succ.first = uid;
    Refresh(s.chunk, s.range);
  } else {
    // A new single-UID range right after p (or at the very front).
    Pos at = p ? Pos{p->chunk, p->range + 1} : Pos{0, 0};
    msn = (p ? CountBefore(*p) + static_cast<uint32_t>(Len(
                                     chunks_[p->chunk].ranges[p->range].first,
                                     chunks_[p->chunk].ranges[p->range].last))
             : 0) +
          1;
    std::vector<Range>& rs = chunks_[at.chunk].ranges;
    rs.insert(rs.begin() + static_cast<ptrdiff_t>(at.range), Range{uid, uid});
    ++range_count_;
    Refresh(at.chunk, at.range);
    Rebalance(at.chunk);
  }
  ++size_;
  return msn;
}

std::optional<uint32_t> UidView::Erase(uint32_t uid) {
  std::optional<Pos> p = FloorRange(uid);
  if (!p) return std::nullopt;
  Chunk& ch = chunks_[p->chunk];
  Range& r = ch.ranges[p->range];
  if (uid > r.last) return std::nullopt;
  const uint32_t msn = CountBefore(*p) + (uid - r.first) + 1;
  bool structural = false;
  if (r.first == r.last) {
    ch.ranges.erase(ch.ranges.begin() + static_cast<ptrdiff_t>(p->range));
    --range_count_;
    structural = true;
  } else if (uid == r.first) {
    ++r.first;
  } else if (uid == r.last) {
    --r.last;
  } else {
    const Range tail{uid + 1, r.last};
    r.last = uid - 1;
    ch.ranges.insert(ch.ranges.begin() + static_cast<ptrdiff_t>(p->range) + 1,
                     tail);
    ++range_count_;
    structural = true;
  }
  --size_;
  Refresh(p->chunk, p->range);
  if (structural) Rebalance(p->chunk);
  return msn;
}

// --- Resolve
// -------------------------------------------------------------------

std::vector<std::pair<uint32_t, uint32_t>> UidView::Resolve(
    const imap::SequenceSet& set, bool uid_mode, size_t* steps) const {
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  if (set.is_saved_result() || size_ == 0) return pieces;
  const uint32_t star = uid_mode ? max_uid() : static_cast<uint32_t>(size_);
  // The set's own ranges, "*" resolved, sorted and merged: the view is walked
  // once per disjoint range however often the device repeats one.
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  spans.reserve(set.ranges().size());
  for (const imap::SeqRange& sr : set.ranges()) {
    uint32_t a = sr.first == imap::kStar ? star : sr.first;
    uint32_t b = sr.last == imap::kStar ? star : sr.last;
    if (a > b) std::swap(a, b);
    spans.emplace_back(a, b);
  }
  std::sort(spans.begin(), spans.end());
  size_t merged = 0;
  for (const auto& span : spans) {
    if (merged > 0 && static_cast<uint64_t>(span.first) <=
                          static_cast<uint64_t>(spans[merged - 1].second) + 1) {
      spans[merged - 1].second = std::max(spans[merged - 1].second, span.second);
    } else {
      spans[merged++] = span;
    }
  }
  spans.resize(merged);
  size_t visited = 0;
  for (auto [a, b] : spans) {
    if (uid_mode) {
      std::optional<Pos> p = CeilRange(a);
      while (p) {
        ++visited;
        const Range& r = chunks_[p->chunk].ranges[p->range];
        if (r.first > b) break;
        pieces.emplace_back(std::max(a, r.first), std::min(b, r.last));
        if (!Next(&*p)) break;
      }
    } else {
      if (a == 0) a = 1;
      if (b > size_) b = static_cast<uint32_t>(size_);
      if (a > b) continue;
      // Locate MSN a, then walk forward for b - a + 1 UIDs.
      const uint32_t first_uid = *UidAt(a);
      Pos p = *FloorRange(first_uid);
      uint64_t remaining = static_cast<uint64_t>(b) - a + 1;
      uint32_t from = first_uid;
      while (true) {
        ++visited;
        const Range& r = chunks_[p.chunk].ranges[p.range];
        const uint64_t take = std::min<uint64_t>(remaining, Len(from, r.last));
        pieces.emplace_back(from, static_cast<uint32_t>(from + take - 1));
        remaining -= take;
        if (remaining == 0 || !Next(&p)) break;
        from = chunks_[p.chunk].ranges[p.range].first;
      }
    }
  }
  if (steps != nullptr) *steps = visited;
  std::sort(pieces.begin(), pieces.end());
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (const auto& piece : pieces) {
    if (!out.empty() && static_cast<uint64_t>(piece.first) <=
                            static_cast<uint64_t>(out.back().second) + 1) {
      out.back().second = std::max(out.back().second, piece.second);
    } else {
      out.push_back(piece);
    }
  }
  return out;
}

// --- Text form
// -------------------------------------------------------------------

std::string RangesToSequenceSet(
    const std::vector<std::pair<uint32_t, uint32_t>>& ranges) {
  std::string out;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (i > 0) out.push_back(',');
    absl::StrAppend(&out, ranges[i].first);
    if (ranges[i].second != ranges[i].first) {
      absl::StrAppend(&out, ":", ranges[i].second);
    }
  }
  return out;
}

std::string UidView::Serialize() const { return RangesToSequenceSet(Ranges()); }

namespace {

// nz-number without leading zeros, up to 4294967295.
bool ParseUid(absl::string_view text, size_t* i, uint32_t* out) {
  if (*i >= text.size() || text[*i] < '1' || text[*i] > '9') return false;
  uint64_t v = 0;
  while (*i < text.size() && text[*i] >= '0' && text[*i] <= '9') {
    v = v * 10 + static_cast<uint64_t>(text[*i] - '0');
    if (v > UINT32_MAX) return false;
    ++*i;
  }
  *out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

absl::StatusOr<UidView> UidView::Parse(absl::string_view text) {
  std::vector<Range> ranges;
  size_t i = 0;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid UID view at offset ", i, ": ", why, " in \"",
                     text.substr(0, 64), text.size() > 64 ? "..." : "", "\""));
  };
  while (i < text.size()) {
    Range r;
    if (!ParseUid(text, &i, &r.first)) return bad("expected a UID");
    r.last = r.first;
    if (i < text.size() && text[i] == ':') {
      ++i;
      if (!ParseUid(text, &i, &r.last)) return bad("expected a UID");
      if (r.last <= r.first) return bad("range not ascending");
    }
    if (!ranges.empty() && static_cast<uint64_t>(r.first) <=
                               static_cast<uint64_t>(ranges.back().last) + 1) {
      return bad("ranges unsorted, overlapping or adjacent");
    }
    ranges.push_back(r);
    if (i == text.size()) break;
    if (text[i] != ',') return bad("expected ','");
    ++i;
    if (i == text.size()) return bad("trailing ','");
  }
  return FromRanges(ranges);
}

UidView UidView::FromRanges(const std::vector<Range>& ranges) {
  UidView v;
  for (size_t i = 0; i < ranges.size(); i += kBulkFill) {
    Chunk ch;
    const size_t end = std::min(ranges.size(), i + kBulkFill);
    ch.ranges.assign(ranges.begin() + static_cast<ptrdiff_t>(i),
                     ranges.begin() + static_cast<ptrdiff_t>(end));
    ch.cum.resize(ch.ranges.size());
    for (size_t k = 0; k < ch.ranges.size(); ++k) {
      ch.cum[k] = ch.before(k) + static_cast<uint32_t>(Len(ch.ranges[k].first,
                                                           ch.ranges[k].last));
    }
    v.size_ += ch.cum.back();
    v.chunks_.push_back(std::move(ch));
  }
  v.range_count_ = ranges.size();
  v.RebuildIndex();
  return v;
}

UidView UidView::FromSortedUids(const std::vector<uint32_t>& uids) {
  std::vector<uint32_t> sorted;
  const std::vector<uint32_t>* in = &uids;
  if (!std::is_sorted(uids.begin(), uids.end())) {
    sorted = uids;
    std::sort(sorted.begin(), sorted.end());
    in = &sorted;
  }
  std::vector<Range> ranges;
  for (uint32_t uid : *in) {
    if (uid == 0) continue;
    if (!ranges.empty() && uid <= ranges.back().last) continue;  // duplicate
    if (!ranges.empty() && uid == ranges.back().last + 1) {
      ranges.back().last = uid;
    } else {
      ranges.push_back(Range{uid, uid});
    }
  }
  return FromRanges(ranges);
}

size_t UidView::MemoryBytes() const {
  size_t bytes = sizeof(*this) + chunks_.capacity() * sizeof(Chunk) +
                 chunk_first_.capacity() * sizeof(uint32_t) +
                 fenwick_.capacity() * sizeof(uint32_t);
  for (const Chunk& ch : chunks_) {
    bytes += ch.ranges.capacity() * sizeof(Range) +
             ch.cum.capacity() * sizeof(uint32_t);
  }
  return bytes;
}

}  // namespace pimap::session
