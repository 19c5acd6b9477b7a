// The watch's headline look-ups (StoreWatch::LookUpHeadline) for the Web Push
// wake-ups of `--outband-payload full` in notify mode, where events carry
// only UIDs and flags.
//
// Why here and why this way: the watch already has INBOX selected on the
// user's own connection, so one "UID FETCH <uids> (BODY.PEEK[HEADER.FIELDS
// (SUBJECT FROM)])" costs the store one small command and no SELECT; PEEK
// leaves \Seen alone. The two fields are NOT added to the catch-up's FETCH:
// that one reports every changed message (flag changes too) for every user,
// while a headline is needed only for the newest admitted message of a
// wake-up of a device away with a full payload, i.e. rarely. The registry
// asks once per message, never per device; the watch asks the store at its
// next settle (leaving IDLE for it), never blocking the shard, and a timer
// answers null when the store is slower than the wait, so the wake-up goes
// without the headline rather than late.
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/engine/shard.h"
#include "core/imap/header_text.h"
#include "core/imap/writer.h"
#include "core/session/store_text.h"
#include "store/user_watcher.h"

namespace pimap::store {

template <typename Pred>
void UserWatcher::AnswerAsks(
    Pred which, const std::shared_ptr<const session::MessageHeadline>& h) {
  std::vector<HeadlineAsk> answered;
  for (size_t i = 0; i < headline_asks_.size();) {
    if (!which(headline_asks_[i])) {
      ++i;
      continue;
    }
    shard_->timers().Cancel(headline_asks_[i].timer);
    answered.push_back(std::move(headline_asks_[i]));
    headline_asks_.erase(headline_asks_.begin() + static_cast<ptrdiff_t>(i));
  }
  for (HeadlineAsk& ask : answered) ask.done(h);
}

void UserWatcher::LookUpHeadline(absl::string_view folder, uint32_t uidvalidity,
                                 uint32_t uid, int64_t wait_ms,
                                 HeadlineDone done) {
  // INBOX; or the folder whose look just ended on an excursion, still
  // selected while its events are delivered (Sieve files mail elsewhere).
  const bool can_ask = (folder == kFolder ||
                        (state_ == State::kExamine && folder == selected_)) &&
                       this->uidvalidity(folder) == uidvalidity && uid != 0 &&
                       link_ != nullptr && state_ != State::kBackoff &&
                       state_ != State::kRejected &&
                       headline_asks_.size() < kMaxHeadlineAsks;
  HeadlineAsk ask;
  ask.id = ++headline_ask_ids_;
  ask.uid = can_ask ? uid : 0;  // 0: never in a FETCH, only answered null
  ask.folder = std::string(folder);
  ask.done = std::move(done);
  // Answered from a timer, never inside this call: null at once when the
  // store cannot be asked, else when the wait is over without an answer.
  ask.timer = shard_->timers().Schedule(
      can_ask ? std::max<int64_t>(wait_ms, 0) : 0, [this, id = ask.id] {
        for (HeadlineAsk& a : headline_asks_) {
          if (a.id == id) a.timer = 0;  // fired: nothing to cancel
        }
        AnswerAsks([id](const HeadlineAsk& a) { return a.id == id; }, nullptr);
      });
  headline_asks_.push_back(std::move(ask));
  if (can_ask && state_ == State::kIdle) LeaveIdle();  // then Settle asks
}

bool UserWatcher::FetchHeadlines() {
  // Asks the last FETCH did not answer: that message has no such UID (any
  // more), or the link went while it ran. Null now, not at their timers.
  AnswerAsks([](const HeadlineAsk& a) { return a.sent; }, nullptr);
  if (headline_asks_.empty() || selected_.empty() || link_ == nullptr) {
    return false;
  }
  std::vector<uint32_t> uids;
  for (HeadlineAsk& ask : headline_asks_) {
    if (ask.uid == 0 || ask.folder != selected_) continue;
    ask.sent = true;
    uids.push_back(ask.uid);
  }
  if (uids.empty()) return false;
  // Several asks of one message (the registry asks once per message and
  // batch; two batches may name the same one): one UID in the FETCH.
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  state_ = State::kHeadline;
  headline_excursion_ = selected_ != kFolder;
  Send(absl::StrCat("W10 UID FETCH ", absl::StrJoin(uids, ","),
                    " (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"));
  return true;
}

void UserWatcher::AfterHeadlines() {
  if (std::exchange(headline_excursion_, false)) {
    NextFolder();
    return;
  }
  Settle();
}

std::string UserWatcher::LoggedArgs(const imap::Response& r) const {
  if (state_ == State::kHeadline) return "(a headline: not logged)";
  return imap::QuoteForLog(session::RenderArgs(r.args, 0).substr(0, 160));
}

bool UserWatcher::OnHeadlineFetch(const imap::Response& r) {
  if (r.args.empty() || r.args[0].type != imap::Arg::Type::kList) return false;
  const std::vector<imap::Arg>& items = r.args[0].children;
  uint32_t uid = 0;
  const imap::Arg* header = nullptr;
  bool other = false;  // FLAGS, MODSEQ...: a change to catch up besides
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const std::string name = absl::AsciiStrToUpper(items[i].value);
    if (name == "UID") {
      if (!absl::SimpleAtoi(items[i + 1].value, &uid)) uid = 0;
    } else if (absl::StartsWith(name, "BODY[HEADER.FIELDS")) {
      header = &items[i + 1];
    } else {
      other = true;
    }
  }
  if (header == nullptr || uid == 0) return false;
  // Something changed besides: looked at again.
  if (other && open_ == kFolder) inbox_dirty_ = true;
  if (other && open_ != kFolder) folders_.Queue(open_);
  // NIL: the store has no such header section to give. Every ask of that
  // message gets the same answer.
  AnswerAsks([uid](const HeadlineAsk& a) { return a.sent && a.uid == uid; },
             header->is_string()
                 ? session::MakeHeadline(
                       imap::HeaderFieldValue(header->value, "Subject"),
                       imap::HeaderFieldValue(header->value, "From"))
                 : nullptr);
  return true;
}

}  // namespace pimap::store
