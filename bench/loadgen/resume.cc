#include "bench/loadgen/resume.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/loadgen/blocking_io.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/loadgen/probes.h"

namespace pimap::bench {

std::string NormalizeFlags(const std::string& flags_text) {
  std::vector<std::string> flags;
  for (absl::string_view f : absl::StrSplit(flags_text, ' ', absl::SkipEmpty())) {
    if (absl::EqualsIgnoreCase(f, "\\Recent")) continue;
    flags.emplace_back(f);
  }
  std::sort(flags.begin(), flags.end());
  return absl::StrJoin(flags, " ");
}

bool ParseFetchAttrs(const std::string& attrs, uint32_t* uid, bool* has_flags,
                     std::string* flags) {
  *uid = 0;
  *has_flags = false;
  const std::string upper = absl::AsciiStrToUpper(attrs);
  size_t p = upper.find("UID ");
  while (p != std::string::npos && p > 0 && upper[p - 1] != '(' && upper[p - 1] != ' ')
    p = upper.find("UID ", p + 1);
  if (p != std::string::npos) {
    size_t q = p + 4;
    size_t e = q;
    while (e < upper.size() && absl::ascii_isdigit(static_cast<unsigned char>(upper[e]))) ++e;
    absl::SimpleAtoi(absl::string_view(upper).substr(q, e - q), uid);
  }
  size_t f = upper.find("FLAGS (");
  if (f != std::string::npos) {
    const size_t start = f + 7;
    const size_t end = attrs.find(')', start);
    if (end != std::string::npos) {
      *has_flags = true;
      *flags = NormalizeFlags(attrs.substr(start, end - start));
    }
  }
  return *uid != 0 || *has_flags;
}

namespace {

// A blocking IMAP client: enough for LOGIN/SELECT/APPEND/STORE/EXPUNGE/FETCH.
class StoreClient {
 public:
  ~StoreClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool Connect(const HostPort& hp, std::string* err) {
    fd_ = ConnectBlocking(hp, 20, "store", err);
    if (fd_ < 0) return false;
    std::string line;
    if (!ReadLine(&line) || !absl::StartsWith(line, "* OK")) {
      *err = "store greeting: " + line;
      return false;
    }
    return true;
  }

  // Runs one command; untagged lines go to *untagged (if given). True on tagged OK.
  bool Run(const std::string& cmd, std::vector<std::string>* untagged, std::string* tagged,
           const std::string& literal = "") {
    const std::string tag = absl::StrCat("s", ++seq_);
    std::string out = absl::StrCat(tag, " ", cmd, "\r\n");
    if (!literal.empty()) absl::StrAppend(&out, literal, "\r\n");
    if (!Send(out)) {
      *tagged = "send failed";
      return false;
    }
    for (;;) {
      std::string line;
      if (!ReadLine(&line)) {
        *tagged = "connection lost or timed out";
        return false;
      }
      if (absl::StartsWith(line, tag + " ")) {
        *tagged = line;
        return absl::StartsWithIgnoreCase(absl::string_view(line).substr(tag.size() + 1), "OK");
      }
      if (untagged != nullptr && absl::StartsWith(line, "* ")) untagged->push_back(line.substr(2));
    }
  }

  // INBOX must be selected. Reads every message's UID and flags, in UID order.
  bool FetchAll(std::vector<ModelMsg>* out, std::string* err) {
    std::vector<std::string> lines;
    std::string tagged;
    if (!Run("UID FETCH 1:* (UID FLAGS)", &lines, &tagged)) {
      *err = "UID FETCH: " + tagged;
      return false;
    }
    out->clear();
    for (const std::string& l : lines) {
      size_t sp = l.find(' ');
      if (sp == std::string::npos || !absl::StartsWithIgnoreCase(l.substr(sp + 1), "FETCH ")) continue;
      ModelMsg m;
      bool has_flags = false;
      ParseFetchAttrs(l.substr(sp + 7), &m.uid, &has_flags, &m.flags);
      m.flags_known = has_flags;
      if (m.uid != 0) out->push_back(m);
    }
    std::sort(out->begin(), out->end(),
              [](const ModelMsg& a, const ModelMsg& b) { return a.uid < b.uid; });
    return true;
  }

  bool Append(const std::string& body, uint32_t* uid, std::string* err) {
    std::string tagged;
    if (!Run(absl::StrCat("APPEND INBOX {", body.size(), "+}"), nullptr, &tagged, body)) {
      *err = "APPEND: " + tagged;
      return false;
    }
    // "... OK [APPENDUID uidvalidity uid] ..."
    *uid = 0;
    size_t p = tagged.find("[APPENDUID ");
    if (p != std::string::npos) {
      std::vector<std::string> parts =
          absl::StrSplit(tagged.substr(p + 11), absl::ByAnyChar(" ]"), absl::SkipEmpty());
      if (parts.size() >= 2) absl::SimpleAtoi(parts[1], uid);
    }
    if (*uid == 0) {
      *err = "APPEND: no APPENDUID in " + tagged;
      return false;
    }
    return true;
  }

 private:
  bool Send(const std::string& s) { return SendAll(fd_, s); }

  bool Fill() {
    char tmp[16384];
    ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  // One response line; literals ({n}) are inlined.
  bool ReadLine(std::string* line) {
    line->clear();
    for (;;) {
      size_t nl;
      while ((nl = buf_.find("\r\n")) == std::string::npos) {
        if (!Fill()) return false;
      }
      std::string part = buf_.substr(0, nl);
      buf_.erase(0, nl + 2);
      line->append(part);
      size_t lb = part.rfind('{');
      if (!part.empty() && part.back() == '}' && lb != std::string::npos) {
        size_t n = 0;
        if (absl::SimpleAtoi(part.substr(lb + 1, part.size() - lb - 2), &n)) {
          while (buf_.size() < n) {
            if (!Fill()) return false;
          }
          line->append(buf_, 0, n);
          buf_.erase(0, n);
          continue;
        }
      }
      return true;
    }
  }

  int fd_ = -1;
  uint64_t seq_ = 0;
  std::string buf_;
};

std::string MessageBody(int user, uint64_t n, const std::string& prefix) {
  return absl::StrCat("From: bench@localhost\r\nTo: ", prefix, user,
                      "@localhost\r\nSubject: resume test ", n, "\r\nMessage-ID: <resume-",
                      NowUs(), "-", user, "-", n, "@localhost>\r\n\r\nmessage ", n, "\r\n");
}

// Logs in as `user` and selects INBOX.
bool Open(StoreClient* c, const Options& o, int user, std::string* err) {
  if (!c->Connect(o.direct, err)) return false;
  std::string tagged;
  if (!c->Run(absl::StrCat("LOGIN \"", o.user_prefix, user, "\" \"", o.password, "\""), nullptr,
              &tagged)) {
    *err = absl::StrCat("store LOGIN ", o.user_prefix, user, ": ", tagged);
    return false;
  }
  if (!c->Run("SELECT INBOX", nullptr, &tagged)) {
    *err = "store SELECT INBOX: " + tagged;
    return false;
  }
  return true;
}

}  // namespace

StoreEventsResult SeedMailboxes(const Options& o, int users, int per_user) {
  StoreEventsResult r;
  r.done.resize(static_cast<size_t>(users));
  std::mutex mu;
  const int64_t start = NowUs();
  const int threads = std::max(1, std::min(4, users));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int u = t; u < users; u += threads) {
        StoreClient c;
        std::string err;
        bool ok = Open(&c, o, u, &err);
        for (int k = 0; ok && k < per_user; ++k) {
          uint32_t uid = 0;
          ok = c.Append(MessageBody(u, static_cast<uint64_t>(k), o.user_prefix), &uid, &err);
        }
        std::string tagged;
        if (ok) c.Run("LOGOUT", nullptr, &tagged);
        if (!ok) {
          std::lock_guard<std::mutex> lock(mu);
          ++r.failed;
          if (r.errors.size() < 10) r.errors.push_back(err);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  r.seconds = static_cast<double>(NowUs() - start) / 1e6;
  return r;
}

StoreEventsResult RunStoreEvents(const Options& o, int users,
                                 const std::vector<PlannedEvent>& plan, uint64_t seed,
                                 int threads) {
  StoreEventsResult r;
  r.done.resize(static_cast<size_t>(users));
  r.truth.resize(static_cast<size_t>(users));
  std::vector<std::vector<EventKind>> per_user(static_cast<size_t>(users));
  for (const PlannedEvent& e : plan) per_user[static_cast<size_t>(e.user)].push_back(e.kind);
  std::mutex mu;
  const int64_t start = NowUs();
  threads = std::max(1, std::min(threads, users));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int u = t; u < users; u += threads) {
        std::mt19937_64 rng(seed * 7919ull + static_cast<uint64_t>(u));
        StoreClient c;
        std::string err;
        std::vector<ModelMsg> box;
        std::vector<DoneEvent>& done = r.done[static_cast<size_t>(u)];
        int64_t n_new = 0, n_flags = 0, n_exp = 0;
        bool ok = Open(&c, o, u, &err) && c.FetchAll(&box, &err);
        for (EventKind kind : per_user[static_cast<size_t>(u)]) {
          if (!ok) break;
          if (box.empty()) kind = EventKind::kNew;
          std::string tagged;
          if (kind == EventKind::kNew) {
            uint32_t uid = 0;
            ok = c.Append(MessageBody(u, rng(), o.user_prefix), &uid, &err);
            if (ok) {
              box.push_back(ModelMsg{uid, "", true});
              done.push_back(DoneEvent{kind, uid, ""});
              ++n_new;
            }
          } else if (kind == EventKind::kFlags) {
            ModelMsg& m = box[rng() % box.size()];
            static const char* kFlags[] = {"\\Seen", "\\Flagged", "\\Answered"};
            const std::string flag = kFlags[rng() % 3];
            std::vector<std::string> have = absl::StrSplit(m.flags, ' ', absl::SkipEmpty());
            const bool present = std::find(have.begin(), have.end(), flag) != have.end();
            ok = c.Run(absl::StrCat("UID STORE ", m.uid, present ? " -FLAGS.SILENT (" : " +FLAGS.SILENT (",
                                    flag, ")"),
                       nullptr, &tagged);
            if (!ok) {
              err = "UID STORE: " + tagged;
            } else {
              if (present) {
                have.erase(std::find(have.begin(), have.end(), flag));
              } else {
                have.push_back(flag);
              }
              m.flags = NormalizeFlags(absl::StrJoin(have, " "));
              done.push_back(DoneEvent{kind, m.uid, m.flags});
              ++n_flags;
            }
          } else {
            const size_t i = rng() % box.size();
            const uint32_t uid = box[i].uid;
            ok = c.Run(absl::StrCat("UID STORE ", uid, " +FLAGS.SILENT (\\Deleted)"), nullptr,
                       &tagged) &&
                 c.Run(absl::StrCat("UID EXPUNGE ", uid), nullptr, &tagged);
            if (!ok) {
              err = "UID EXPUNGE: " + tagged;
            } else {
              box.erase(box.begin() + static_cast<std::ptrdiff_t>(i));
              done.push_back(DoneEvent{kind, uid, ""});
              ++n_exp;
            }
          }
        }
        if (ok) ok = c.FetchAll(&r.truth[static_cast<size_t>(u)], &err);
        std::string tagged;
        if (ok) c.Run("LOGOUT", nullptr, &tagged);
        std::lock_guard<std::mutex> lock(mu);
        r.new_messages += n_new;
        r.flag_changes += n_flags;
        r.expunges += n_exp;
        if (!ok) {
          ++r.failed;
          if (r.errors.size() < 10) r.errors.push_back(absl::StrCat("user ", u, ": ", err));
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  r.seconds = static_cast<double>(NowUs() - start) / 1e6;
  return r;
}

}  // namespace pimap::bench
