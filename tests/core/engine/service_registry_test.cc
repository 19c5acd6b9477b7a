// The per-shard service registry: lookup by type, replacement, removal.
#include "core/engine/service_registry.h"

#include "gtest/gtest.h"

namespace pimap::engine {
namespace {

struct Alpha {
  int value = 1;
};
struct Beta {
  int value = 2;
};

TEST(ServiceRegistryTest, FindsEachServiceByItsType) {
  ServiceRegistry registry;
  EXPECT_EQ(registry.Find<Alpha>(), nullptr);
  Alpha a;
  Beta b;
  registry.Register(&a);
  registry.Register(&b);
  EXPECT_EQ(registry.Find<Alpha>(), &a);
  EXPECT_EQ(registry.Find<Beta>(), &b);
}

TEST(ServiceRegistryTest, RegisterReplacesAndNullRemoves) {
  ServiceRegistry registry;
  Alpha first;
  Alpha second;
  registry.Register(&first);
  registry.Register(&second);
  EXPECT_EQ(registry.Find<Alpha>(), &second);
  registry.Register<Alpha>(nullptr);
  EXPECT_EQ(registry.Find<Alpha>(), nullptr);
}

TEST(ServiceRegistryTest, TwoRegistriesAreIndependent) {
  ServiceRegistry shard0;
  ServiceRegistry shard1;
  Alpha a0;
  Alpha a1;
  shard0.Register(&a0);
  shard1.Register(&a1);
  EXPECT_EQ(shard0.Find<Alpha>(), &a0);
  EXPECT_EQ(shard1.Find<Alpha>(), &a1);
}

}  // namespace
}  // namespace pimap::engine
