// pimapctl: the operator's command line for a running pimapd, through its
// admin endpoint (--admin-socket, or --admin-listen with a bearer token).
// Parses the command, makes one request (admin_client.h), prints the answer
// in human form (render.h) or as pimapd's JSON (--json).
// Exit codes: 0 ok, 1 an error from pimapd (or pimapd unreachable), 2 usage.
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tools/pimapctl/admin_client.h"
#include "tools/pimapctl/render.h"

namespace {

constexpr char kUsage[] =
    "Usage: pimapctl [--socket PATH | --admin HOST:PORT [--token-file FILE]]\n"
    "                [--json] COMMAND\n"
    "Commands:\n"
    "  who [USER]                   P-IMAP devices (shard, binding, "
    "connected/away,\n"
    "                               idle time, store link) and users (parked\n"
    "                               stock clients, store watch)\n"
    "  sessions USER                each device session of USER: filters, "
    "prefs,\n"
    "                               journal length, checkpoint\n"
    "  kick USER[#DEVICE] [--forget]  close the device's (or every device's)\n"
    "                               connection; --forget also ends the P-IMAP\n"
    "                               session (the next login is a first login)\n"
    "  stats                        the metrics, summed over shards\n"
    "  reload                       what SIGHUP does (certificates)\n"
    "  drain                        stop accepting devices; BYE [UNAVAILABLE]\n"
    "                               to every connection (sessions live on)\n"
    "Default socket: /run/pimapd/admin.sock. Exit codes: 0 ok, 1 error from\n"
    "pimapd, 2 usage.\n";

constexpr char kDefaultSocket[] = "/run/pimapd/admin.sock";

int Usage(const std::string& why) {
  if (!why.empty()) std::cerr << "pimapctl: " << why << "\n";
  std::cerr << kUsage;
  return 2;
}

int Failed(const std::string& why) {
  std::cerr << "pimapctl: " << why << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  pimap::ctl::AdminTarget target;
  std::string admin;
  std::string token_file;
  bool json = false;
  bool forget = false;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name, std::string* out) -> bool {
      const std::string prefix = absl::StrCat(name, "=");
      if (absl::StartsWith(arg, prefix)) {
        *out = arg.substr(prefix.size());
        return true;
      }
      if (arg == name && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      return false;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--forget") {
      forget = true;
    } else if (value("--socket", &target.socket_path) ||
               value("--admin", &admin) || value("--token-file", &token_file)) {
    } else if (absl::StartsWith(arg, "--")) {
      return Usage(absl::StrCat("unknown option ", arg));
    } else {
      words.push_back(arg);
    }
  }
  if (!admin.empty() && !target.socket_path.empty()) {
    return Usage("give --socket or --admin, not both");
  }
  if (!admin.empty()) {
    const size_t colon = admin.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == admin.size()) {
      return Usage("--admin wants HOST:PORT");
    }
    target.host = admin.substr(0, colon);
    target.port = admin.substr(colon + 1);
    if (target.host.size() > 2 && target.host.front() == '[' &&
        target.host.back() == ']') {
      target.host = target.host.substr(1, target.host.size() - 2);
    }
  } else if (target.socket_path.empty()) {
    target.socket_path = kDefaultSocket;
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::string token((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
    if (!in && token.empty()) {
      return Failed(absl::StrCat("cannot read --token-file ", token_file));
    }
    target.token = std::string(absl::StripAsciiWhitespace(token));
  }
  if (words.empty()) return Usage("no command");
  const std::string command = words[0];
  auto args_between = [&](size_t lo, size_t hi) {
    return words.size() - 1 >= lo && words.size() - 1 <= hi;
  };
  if (forget && command != "kick") return Usage("--forget is for kick");

  std::string method = "GET";
  std::string path;
  if (command == "who") {
    if (!args_between(0, 1)) return Usage("who takes at most one USER");
    path = "/admin/who";
    if (words.size() == 2) {
      path += "?user=" + pimap::ctl::QueryEscape(words[1]);
    }
  } else if (command == "sessions") {
    if (!args_between(1, 1)) return Usage("sessions takes one USER");
    path = "/admin/sessions?user=" + pimap::ctl::QueryEscape(words[1]);
  } else if (command == "kick") {
    if (!args_between(1, 1)) return Usage("kick takes one USER[#DEVICE]");
    // A user name may hold '#' itself: the device is after the last one.
    const std::string& who = words[1];
    const size_t hash = who.rfind('#');
    const std::string user =
        hash == std::string::npos ? who : who.substr(0, hash);
    const std::string device =
        hash == std::string::npos ? "" : who.substr(hash + 1);
    if (user.empty() || (hash != std::string::npos && device.empty())) {
      return Usage("kick takes USER or USER#DEVICE");
    }
    method = "POST";
    path = "/admin/kick?user=" + pimap::ctl::QueryEscape(user);
    if (!device.empty()) {
      path += "&device=" + pimap::ctl::QueryEscape(device);
    }
    if (forget) path += "&forget=1";
  } else if (command == "stats") {
    if (!args_between(0, 0)) return Usage("stats takes no argument");
    path = "/metrics";
  } else if (command == "reload") {
    if (!args_between(0, 0)) return Usage("reload takes no argument");
    method = "POST";
    path = "/admin/reload";
  } else if (command == "drain") {
    if (!args_between(0, 0)) return Usage("drain takes no argument");
    method = "POST";
    path = "/admin/drain";
  } else {
    return Usage(absl::StrCat("unknown command ", command));
  }

  absl::StatusOr<pimap::ctl::AdminAnswer> answer =
      pimap::ctl::AdminRequest(target, method, path);
  if (!answer.ok()) return Failed(std::string(answer.status().message()));
  const int status = answer->status;
  // 503: some shards did not answer; the rest is still worth showing.
  if (status != 200 && status != 202 && status != 503) {
    return Failed(
        absl::StrCat(status, ": ", pimap::ctl::ErrorMessage(answer->body)));
  }
  if (command == "stats") {
    std::cout << pimap::ctl::RenderStats(answer->body, json);
    return 0;
  }
  if (json) {
    std::cout << answer->body;
    if (!absl::EndsWith(answer->body, "\n")) std::cout << "\n";
    return status == 503 ? 1 : 0;
  }
  absl::StatusOr<std::string> text;
  if (command == "who") {
    text = pimap::ctl::RenderWho(answer->body);
  } else if (command == "sessions") {
    text = pimap::ctl::RenderSessions(answer->body);
  } else if (command == "kick") {
    text = pimap::ctl::RenderKick(answer->body);
    if (text.ok() && text->empty()) {
      return Failed(absl::StrCat("no P-IMAP session of ", words[1]));
    }
  } else if (command == "drain") {
    text = pimap::ctl::RenderDrain(answer->body);
  } else {  // reload
    text = status == 200 ? std::string("reloaded\n")
                         : std::string("reload queued (still running)\n");
  }
  if (!text.ok()) return Failed(std::string(text.status().message()));
  std::cout << *text;
  return status == 503 ? 1 : 0;
}
