/**
 * Resident memory of a process from Linux's /proc: the current resident set (VmRSS), its peak
 * (VmHWM), and resetting that peak so it covers only what follows (writing 5 to clear_refs;
 * needs the right to ptrace the process, which the owner or root has).
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** A field of /proc/<pid>/status in bytes; `pid` 'self' is this process. */
export function procStatusBytes(field: 'VmHWM' | 'VmRSS', pid: number | 'self' = 'self'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status (this measurement needs Linux)`);
  return Number(m[1]) * 1024;
}

/** Sets the process's VmHWM back to its VmRSS; false when this process may not (then VmHWM counts from the process's start). */
export function resetPeakRss(pid: number | 'self' = 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
