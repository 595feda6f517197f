#pragma once
// Every built-in task, the task list and the recipe.
#include <commercemm/tasks/image_text.hpp>
#include <commercemm/tasks/retrieval.hpp>
#include <commercemm/tasks/task.hpp>
#include <commercemm/tasks/task_list.hpp>
