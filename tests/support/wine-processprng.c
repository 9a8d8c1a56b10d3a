/* For running Peal's .exe files under Debian's wine 8.0 only (never shipped):
 * Rust's std gets its random numbers from ProcessPrng in
 * bcryptprimitives.dll (Windows 10 and later), which this wine lacks, so
 * every Rust program stops at start. This DLL, built by the test harness
 * (support/wine.rs) into the wine prefix's system32 and loaded with
 * WINEDLLOVERRIDES=bcryptprimitives=n,b, gives it from RtlGenRandom
 * (advapi32's SystemFunction036), which wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!SystemFunction036(data, chunk)) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}
