#pragma once
// Every modality-randomization schedule (design §5): the Schedule concept and its policies.
#include <commercemm/schedules/schedule.hpp>
#include <commercemm/schedules/fixed_fusion_split.hpp>
#include <commercemm/schedules/linear_split_ramp.hpp>
#include <commercemm/schedules/modality_dropout.hpp>
#include <commercemm/schedules/random_fusion_split.hpp>
