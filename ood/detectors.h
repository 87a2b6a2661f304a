// Everything a command needs of the detectors: the interface (ood/detector.h), the registry
// (ood/registry.h) and the fusions (ood/fusion.h). The concrete detectors live in detectors.cpp.
#pragma once
#include "ood/detector.h"
#include "ood/fusion.h"
#include "ood/registry.h"
