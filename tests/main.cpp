// The one Boost.Test main every test executable shares.
#define BOOST_TEST_MODULE commercemm
#include <boost/test/unit_test.hpp>
