#include "bench/loadgen/lmtp.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/loadgen/blocking_io.h"
#include "bench/loadgen/probes.h"

namespace pimap::bench {

namespace {

class LmtpSession {
 public:
  ~LmtpSession() {
    if (fd_ >= 0) close(fd_);
  }
  bool Connect(const HostPort& hp, std::string* err) {
    fd_ = ConnectBlocking(hp, 15, "lmtp", err);
    if (fd_ < 0) return false;
    std::string line;
    if (!Reply(&line, '2')) { *err = "lmtp greeting: " + line; return false; }
    if (!Cmd("LHLO pimap-bench\r\n", '2', &line)) { *err = "LHLO: " + line; return false; }
    return true;
  }
  // Returns true once the store accepted the message. *data_end_us: when the end of
  // DATA (the message and its final ".") was handed to the kernel.
  bool Deliver(const std::string& rcpt, const std::string& body, int64_t* data_end_us,
               std::string* err) {
    std::string line;
    if (!Cmd("MAIL FROM:<bench@localhost>\r\n", '2', &line)) { *err = "MAIL: " + line; return false; }
    if (!Cmd("RCPT TO:<" + rcpt + ">\r\n", '2', &line)) {
      *err = "RCPT " + rcpt + ": " + line;
      Cmd("RSET\r\n", '2', &line);
      return false;
    }
    if (!Cmd("DATA\r\n", '3', &line)) { *err = "DATA: " + line; return false; }
    if (!Send(body + ".\r\n")) { *err = "end of DATA: send failed"; return false; }
    *data_end_us = NowUs();
    if (!Reply(&line, '2')) { *err = "end of DATA: " + line; return false; }
    return true;
  }

 private:
  bool Send(const std::string& s) { return SendAll(fd_, s); }

  // Reads one (possibly multi-line) reply; true if its code starts with `want`.
  bool Reply(std::string* last, char want) {
    for (int lines = 0; lines < 100; ++lines) {
      size_t nl;
      while ((nl = buf_.find('\n')) == std::string::npos) {
        char tmp[4096];
        ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
        if (n <= 0) { *last = "connection lost or timed out"; return false; }
        buf_.append(tmp, static_cast<size_t>(n));
      }
      *last = buf_.substr(0, nl);
      if (!last->empty() && last->back() == '\r') last->pop_back();
      buf_.erase(0, nl + 1);
      if (last->size() >= 4 && (*last)[3] == '-') continue;
      return !last->empty() && (*last)[0] == want;
    }
    return false;
  }
  bool Cmd(const std::string& c, char want, std::string* line) {
    if (!Send(c)) { *line = "send failed"; return false; }
    return Reply(line, want);
  }
  int fd_ = -1;
  std::string buf_;
};

}  // namespace

LmtpResult DeliverMessages(const HostPort& lmtp, int sessions, int users,
                           const std::string& user_prefix,
                           const std::vector<int>& recipients, double rate,
                           double max_s, const std::function<void(int)>& on_accept) {
  LmtpResult result;
  result.accepted_us.resize(static_cast<size_t>(users));
  result.data_end_us.resize(static_cast<size_t>(users));
  sessions = std::max(1, std::min(sessions, users));
  std::mutex mu;
  const int64_t start = NowUs();
  const int64_t deadline = start + static_cast<int64_t>(max_s * 1e6);
  std::vector<std::thread> threads;
  for (int s = 0; s < sessions; ++s) {
    threads.emplace_back([&, s] {
      auto session = std::make_unique<LmtpSession>();
      std::string err;
      bool connected = session->Connect(lmtp, &err);
      for (size_t i = 0; i < recipients.size(); ++i) {
        const int u = recipients[i];
        if (u % sessions != s) continue;
        if (NowUs() > deadline) {
          std::lock_guard<std::mutex> lock(mu);
          ++result.failed;
          if (result.errors.size() < 10) result.errors.push_back("push window over before delivery");
          continue;
        }
        if (rate > 0) {
          const int64_t due = start + static_cast<int64_t>(static_cast<double>(i) * 1e6 / rate);
          const int64_t wait = due - NowUs();
          if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
        }
        const std::string rcpt = absl::StrCat(user_prefix, u);
        const std::string body = absl::StrCat(
            "From: bench@localhost\r\nTo: ", rcpt, "@localhost\r\nSubject: bench push ", i,
            "\r\nMessage-ID: <bench-", start, "-", i, "@localhost>\r\n\r\nmessage ", i, "\r\n");
        int64_t data_end = 0;
        bool ok = connected && session->Deliver(rcpt, body, &data_end, &err);
        const int64_t t = NowUs();
        {
          std::lock_guard<std::mutex> lock(mu);
          if (ok) {
            result.accepted_us[static_cast<size_t>(u)].push_back(t);
            result.data_end_us[static_cast<size_t>(u)].push_back(data_end);
            ++result.delivered;
            if (result.first_us == 0 || t < result.first_us) result.first_us = t;
            result.last_us = std::max(result.last_us, t);
          } else {
            ++result.failed;
            if (result.errors.size() < 10) result.errors.push_back(err);
          }
        }
        if (ok && on_accept) on_accept(u);
        if (!ok && !connected) continue;
        if (!ok) {  // the session may be broken: reconnect once
          session = std::make_unique<LmtpSession>();
          connected = session->Connect(lmtp, &err);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return result;
}

}  // namespace pimap::bench
