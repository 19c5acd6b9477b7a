#include "bench/loadgen/probes.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pimap::bench {

int64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int64_t FieldKb(const std::string& text, const std::string& name) {
  size_t pos = 0;
  while ((pos = text.find(name, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      size_t colon = text.find(':', pos);
      if (colon == std::string::npos) return 0;
      size_t end = text.find('\n', colon);
      std::string v(absl::StripAsciiWhitespace(text.substr(colon + 1, end - colon - 1)));
      int64_t kb = 0;
      std::vector<std::string> parts = absl::StrSplit(v, ' ', absl::SkipEmpty());
      if (!parts.empty() && absl::SimpleAtoi(parts[0], &kb)) return kb;
      return 0;
    }
    pos += name.size();
  }
  return 0;
}

// utime+stime (s) and ppid from /proc/PID/stat.
bool ReadStat(int pid, double* cpu_s, int* ppid) {
  std::string s = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t rp = s.rfind(')');
  if (rp == std::string::npos) return false;
  std::vector<std::string> f = absl::StrSplit(s.substr(rp + 2), ' ');
  // f[0]=state f[1]=ppid ... utime = field 14 overall -> f[11], stime f[12]
  if (f.size() < 13) return false;
  int64_t ut = 0, st = 0;
  absl::SimpleAtoi(f[1], ppid);
  absl::SimpleAtoi(f[11], &ut);
  absl::SimpleAtoi(f[12], &st);
  static const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  *cpu_s = static_cast<double>(ut + st) / hz;
  return true;
}

}  // namespace

ProcSample SampleProcess(int pid) {
  ProcSample out;
  if (pid <= 0) return out;
  std::string status = ReadFile("/proc/" + std::to_string(pid) + "/status");
  if (status.empty()) return out;
  out.rss_bytes = FieldKb(status, "VmRSS") * 1024;
  std::string rollup = ReadFile("/proc/" + std::to_string(pid) + "/smaps_rollup");
  out.pss_bytes = FieldKb(rollup, "Pss") * 1024;
  int ppid = 0;
  ReadStat(pid, &out.cpu_s, &ppid);
  out.processes = 1;
  out.ok = true;
  return out;
}

ProcSample SampleTree(const std::vector<int>& roots) {
  ProcSample out;
  if (roots.empty()) return out;
  std::map<int, int> parent;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    double cpu = 0;
    int ppid = 0;
    if (ReadStat(pid, &cpu, &ppid)) parent[pid] = ppid;
  }
  closedir(d);
  std::set<int> members(roots.begin(), roots.end());
  bool grew = true;
  for (int round = 0; grew && round < 16; ++round) {
    grew = false;
    for (auto& [pid, ppid] : parent) {
      if (!members.count(pid) && members.count(ppid)) {
        members.insert(pid);
        grew = true;
      }
    }
  }
  for (int pid : members) {
    ProcSample p = SampleProcess(pid);
    if (!p.ok) continue;
    out.ok = true;
    out.rss_bytes += p.rss_bytes;
    out.pss_bytes += p.pss_bytes;
    out.cpu_s += p.cpu_s;
    out.processes += 1;
  }
  return out;
}

int FindUniqueProcess(const std::string& comm) {
  int found = 0;
  DIR* d = opendir("/proc");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::string c(absl::StripAsciiWhitespace(ReadFile("/proc/" + std::to_string(pid) + "/comm")));
    if (c == comm) {
      if (found != 0) { found = -1; break; }
      found = pid;
    }
  }
  closedir(d);
  return found > 0 ? found : 0;
}

KernelSample SampleKernel() {
  KernelSample k;
  std::string sockstat = ReadFile("/proc/net/sockstat");
  for (absl::string_view line : absl::StrSplit(sockstat, '\n')) {
    if (!absl::ConsumePrefix(&line, "TCP: ")) continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    for (size_t i = 0; i + 1 < f.size(); i += 2) {
      if (f[i] == "inuse") absl::SimpleAtoi(f[i + 1], &k.tcp_inuse);
      if (f[i] == "mem") absl::SimpleAtoi(f[i + 1], &k.tcp_mem_pages);
    }
  }
  std::string meminfo = ReadFile("/proc/meminfo");
  k.slab_bytes = FieldKb(meminfo, "Slab") * 1024;
  k.mem_available = FieldKb(meminfo, "MemAvailable") * 1024;
  return k;
}

std::map<std::string, double> FetchMetrics(const HostPort& admin) {
  std::map<std::string, double> out;
  if (!admin.set()) return out;
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(admin.host.c_str(), std::to_string(admin.port).c_str(), &hints, &res) != 0)
    return out;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    if (fd >= 0) close(fd);
    freeaddrinfo(res);
    return out;
  }
  freeaddrinfo(res);
  const char req[] = "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n";
  if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0) {
    close(fd);
    return out;
  }
  std::string body;
  char buf[16384];
  for (int i = 0; i < 4096; ++i) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    body.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    // Per-shard samples are skipped; the summed histograms' buckets (labelled
    // with le only) are kept under their full name, e.g. x_bucket{le="0.5"}.
    const size_t brace = line.find('{');
    if (brace != absl::string_view::npos && !absl::StartsWith(line.substr(brace), "{le=\""))
      continue;
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    double v = 0;
    if (f.size() >= 2 && absl::SimpleAtod(f[1], &v)) out[f[0]] = v;
  }
  return out;
}

Json HistogramDelta(const std::map<std::string, double>& before,
                    const std::map<std::string, double>& after, const std::string& family) {
  // (upper bound in seconds, cumulative count in the interval), by bound.
  std::vector<std::pair<double, double>> buckets;
  const std::string prefix = family + "_bucket{le=\"";
  for (auto it = after.lower_bound(prefix); it != after.end(); ++it) {
    if (!absl::StartsWith(it->first, prefix)) break;
    absl::string_view le = absl::string_view(it->first).substr(prefix.size());
    le = absl::StripSuffix(le, "\"}");
    double bound = 0;
    if (le == "+Inf") {
      bound = INFINITY;
    } else if (!absl::SimpleAtod(le, &bound)) {
      continue;
    }
    auto b = before.find(it->first);
    buckets.emplace_back(bound, it->second - (b == before.end() ? 0 : b->second));
  }
  Json j = Json::Object();
  if (buckets.empty()) return j;
  std::sort(buckets.begin(), buckets.end());
  const double count = buckets.back().second;
  j["count"] = count;
  auto sum_after = after.find(family + "_sum");
  auto sum_before = before.find(family + "_sum");
  if (count > 0 && sum_after != after.end())
    j["mean_ms"] = (sum_after->second -
                    (sum_before == before.end() ? 0 : sum_before->second)) * 1000.0 / count;
  // histogram_quantile()'s estimate: linear within the bucket holding the
  // rank; a rank in the +Inf bucket answers the highest finite bound.
  auto quantile = [&](double q) {
    const double rank = q * count;
    double lower = 0, below = 0;
    for (const auto& [bound, cumulative] : buckets) {
      if (cumulative >= rank) {
        if (std::isinf(bound)) return lower;
        const double in_bucket = cumulative - below;
        return in_bucket > 0 ? lower + (bound - lower) * (rank - below) / in_bucket : bound;
      }
      lower = bound;
      below = cumulative;
    }
    return lower;
  };
  if (count > 0) {
    j["p50_ms"] = quantile(0.50) * 1000.0;
    j["p99_ms"] = quantile(0.99) * 1000.0;
  }
  return j;
}

Json SummarizeLatency(std::vector<int64_t>* us) {
  Json j = Json::Object();
  j["count"] = static_cast<int64_t>(us->size());
  if (us->empty()) return j;
  std::sort(us->begin(), us->end());
  auto q = [&](double p) {
    size_t idx = static_cast<size_t>(std::ceil(p * static_cast<double>(us->size()))) ;
    idx = idx == 0 ? 0 : idx - 1;
    if (idx >= us->size()) idx = us->size() - 1;
    return static_cast<double>((*us)[idx]) / 1000.0;
  };
  double sum = 0;
  for (int64_t v : *us) sum += static_cast<double>(v);
  j["mean_ms"] = sum / static_cast<double>(us->size()) / 1000.0;
  j["min_ms"] = static_cast<double>(us->front()) / 1000.0;
  j["p50_ms"] = q(0.50);
  j["p90_ms"] = q(0.90);
  j["p99_ms"] = q(0.99);
  j["p999_ms"] = q(0.999);
  j["max_ms"] = static_cast<double>(us->back()) / 1000.0;
  Json cdf = Json::Array();
  std::vector<double> qs;
  for (int i = 0; i <= 100; ++i) qs.push_back(i / 100.0);
  for (double extra : {0.995, 0.999, 0.9999}) qs.push_back(extra);
  std::sort(qs.begin(), qs.end());
  for (double p : qs) {
    Json pt = Json::Array();
    pt.Push(p);
    pt.Push(p == 0 ? static_cast<double>(us->front()) / 1000.0 : q(p));
    cdf.Push(pt);
  }
  j["cdf"] = cdf;
  return j;
}

Json HostInfo() {
  Json h = Json::Object();
  utsname u{};
  uname(&u);
  h["kernel"] = std::string(u.release);
  h["hostname"] = std::string(u.nodename);
  h["cpus"] = static_cast<int64_t>(sysconf(_SC_NPROCESSORS_ONLN));
  std::string meminfo = ReadFile("/proc/meminfo");
  h["mem_total_bytes"] = FieldKb(meminfo, "MemTotal") * 1024;
  std::string cpuinfo = ReadFile("/proc/cpuinfo");
  size_t p = cpuinfo.find("model name");
  if (p != std::string::npos) {
    size_t colon = cpuinfo.find(':', p), end = cpuinfo.find('\n', p);
    h["cpu_model"] = std::string(absl::StripAsciiWhitespace(cpuinfo.substr(colon + 1, end - colon - 1)));
  }
  h["tcp_port_range"] = std::string(absl::StripAsciiWhitespace(ReadFile("/proc/sys/net/ipv4/ip_local_port_range")));
  h["inotify_max_user_instances"] = std::string(absl::StripAsciiWhitespace(ReadFile("/proc/sys/fs/inotify/max_user_instances")));
  return h;
}

}  // namespace pimap::bench
