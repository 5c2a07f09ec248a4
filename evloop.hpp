// evloop.hpp — the one header a user includes.
#pragma once

#include "core/async_generator.hpp"
#include "core/callback.hpp"
#include "core/concurrent_future.hpp"
#include "core/errors.hpp"
#include "core/event_loop.hpp"
#include "core/future.hpp"
#include "core/handle.hpp"
#include "core/log.hpp"
#include "core/policy.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "core/task_helpers.hpp"
