// Bounded, seeded fuzz run of etcd's gateway JSON parsers under ASan/UBSan
// (bindings/etcd/etcd_json): the answers the real etcd 3.4.23 gave (the seed
// corpus of tests/fuzz/etcd_json_fuzzer.cc), mutated, spliced with JSON
// tokens and cut, plus random bytes. What must hold for any input: no crash
// or overread; every parser accepts or refuses with a message; ErrorStatus is
// never OK; an accepted keep-alive TTL, grant ID and TTL are positive, a
// deleted count not negative, a succeeded txn carries no current key.
// Deterministic; PIMAP_FUZZ_ITERATIONS overrides the count.
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bindings/etcd/etcd_json.h"
#include "gtest/gtest.h"

namespace pimap::etcd {
namespace {

const std::vector<std::string>& Seeds() {
  static const auto* seeds = new std::vector<std::string>{
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"1","raft_term":"2"},"ID":"2324035888307220486","TTL":"5"})",
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"4","raft_term":"2"},"ID":"2324035888307220495","TTL":"3"}})"
      "\n",
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"8","raft_term":"2"},"ID":"2324035888307220518"}})"
      "\n",
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"3","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"},{"key":"Zm9vMg==","create_revision":"3","mod_revision":"3","version":"1"}],"count":"2"})",
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"5","raft_term":"2"},"kvs":[{"key":"bGVhc2Vk","create_revision":"5","mod_revision":"5","version":"1","value":"dg==","lease":"2324035888307220495"}],"count":"1"})",
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"4","raft_term":"2"},"deleted":"1"})",
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"7","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"7"}}}]})",
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"7","raft_term":"2"},"responses":[{"response_range":{"header":{"revision":"7"},"kvs":[{"key":"dXNlci9hbGljZQ==","create_revision":"7","mod_revision":"7","version":"1","value":"bm9kZTE="}],"count":"1"}}]})",
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"8","raft_term":"2"},"succeeded":true,"responses":[{"response_delete_range":{"header":{"revision":"8"},"deleted":"1"}}]})",
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})",
      R"({"error":{"grpc_code":14,"http_code":503,"message":"no leader","http_status":"Service Unavailable"}})",
  };
  return *seeds;
}

const std::vector<std::string>& Tokens() {
  static const auto* tokens = new std::vector<std::string>{
      "{",
      "}",
      "[",
      "]",
      ",",
      ":",
      "\"",
      "\\",
      "null",
      "true",
      "false",
      "0",
      "-1",
      "\"-\"",
      "1e9",
      "\"0\"",
      "\"AA\"",
      "\"!\"",
      "\"\\u0000\"",
      "\"kvs\"",
      "\"TTL\"",
      "\"ID\"",
      "\"result\"",
      "\"error\"",
      "\"code\"",
      "\"responses\"",
      "\"succeeded\"",
      "\"9223372036854775808\"",
      "\"-9223372036854775808\"",
  };
  return *tokens;
}

std::string Mutate(std::mt19937_64& rng) {
  const std::vector<std::string>& seeds = Seeds();
  const std::vector<std::string>& tokens = Tokens();
  std::string s = seeds[rng() % seeds.size()];
  const int edits = static_cast<int>(rng() % 5);
  for (int i = 0; i < edits && !s.empty(); ++i) {
    const size_t at = rng() % s.size();
    switch (rng() % 5) {
      case 0:
        s[at] = static_cast<char>(rng());
        break;
      case 1:
        s.erase(at, 1 + rng() % 16);
        break;
      case 2:
        s.insert(at, tokens[rng() % tokens.size()]);
        break;
      case 3:
        s.resize(at);
        break;
      default:
        s.insert(at, seeds[rng() % seeds.size()]);
        break;
    }
  }
  if (rng() % 8 == 0) {
    s.assign(rng() % 300, '\0');
    for (char& c : s) c = static_cast<char>(rng());
  }
  return s;
}

template <typename T>
void ExpectRefusalSaysWhy(const absl::StatusOr<T>& r) {
  if (!r.ok()) {
    ASSERT_FALSE(r.status().message().empty());
  }
}

TEST(EtcdJsonFuzzTest, InvariantsHoldForMutatedInput) {
  int iterations = 200000;
  if (const char* n = std::getenv("PIMAP_FUZZ_ITERATIONS")) {
    iterations = std::atoi(n);
  }
  std::mt19937_64 rng(20261208);
  for (int i = 0; i < iterations; ++i) {
    const std::string input = Mutate(rng);
    ASSERT_FALSE(ErrorStatus(static_cast<int>(rng() % 600), input).ok());
    const auto grant = ParseGrant(input);
    ExpectRefusalSaysWhy(grant);
    if (grant.ok()) {
      ASSERT_NE(grant->id, 0);
      ASSERT_GT(grant->ttl_s, 0);
    }
    const auto ttl = ParseKeepAlive(input);
    ExpectRefusalSaysWhy(ttl);
    if (ttl.ok()) {
      ASSERT_GT(*ttl, 0);
    }
    ExpectRefusalSaysWhy(ParseRevision(input));
    ExpectRefusalSaysWhy(ParseRange(input));
    const auto deleted = ParseDelete(input);
    ExpectRefusalSaysWhy(deleted);
    if (deleted.ok()) {
      ASSERT_GE(*deleted, 0);
    }
    const auto txn = ParseTxn(input);
    ExpectRefusalSaysWhy(txn);
    if (txn.ok() && txn->succeeded) {
      ASSERT_FALSE(txn->current_exists);
    }
  }
}

}  // namespace
}  // namespace pimap::etcd
