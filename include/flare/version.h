/*
 * flare/version.h - the version of the flare headers, and of the library
 * at run time (flare_version()).
 *
 * The numbers here are the single source of the version: CMakeLists.txt
 * reads them for project(VERSION), the shared library's SONAME, flare.pc
 * and the CMake package's version file. Compare FLARE_VERSION_NUM at compile
 * time and flare_version() at run time to tell which library was loaded.
 */
#ifndef FLARE_VERSION_H
#define FLARE_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_VERSION_MAJOR 0
#define FLARE_VERSION_MINOR 1
#define FLARE_VERSION_PATCH 0
#define FLARE_VERSION       "0.1.0"

/* 0xMMmmpp: one byte each, for #if comparisons. */
#define FLARE_VERSION_NUM                                                                          \
    ((FLARE_VERSION_MAJOR << 16) | (FLARE_VERSION_MINOR << 8) | FLARE_VERSION_PATCH)

/* The version of the library linked at run time, e.g. "0.1.0". */
/* Returns the version string (static). */
const char *flare_version(void);
/* The same as a FLARE_VERSION_NUM-style number. */
/* Returns the version as FLARE_VERSION_NUM. */
unsigned flare_version_num(void);

#ifdef __cplusplus
}
#endif
#endif
