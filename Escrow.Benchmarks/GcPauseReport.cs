using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace Escrow.Benchmarks;

/// <summary>
/// Each garbage collection of a process and what it cost, from a trace of its GC events:
/// <c>dotnet-trace collect -p PID --providers Microsoft-Windows-DotNETRuntime:0x1:4 --duration 00:00:00:40 -o gc.nettrace</c>
/// during a benchmark phase, then <c>gc gc.nettrace</c>. Prints one line per collection (when, generation, how long the
/// process was paused, the bytes that survived it and through which roots they were reached) and a summary per
/// generation. "older" roots are references from older generations (the card table): objects a collection keeps alive
/// because something long-lived refers to them. A background gen2 collection shows only the pause that starts it; the
/// pauses of the gen0/gen1 collections made while it runs are lines of their own.
/// </summary>
public static class GcPauseReport
{
    public const string Usage = """
        usage: gc TRACE.nettrace [--quiet]
          --quiet   the summary only, not one line per collection
        """;

    private static readonly string[] RootNames = ["stack", "finalizer queue", "handles", "older", "sized ref", "overflow", "dependent handles", "new finalizer queue", "steal", "background"];

    public static int Run(string[] args)
    {
        if (TraceFile.WantsUsage(args, Usage, out var exitCode))
        {
            return exitCode;
        }
        var quiet = false;
        foreach (var option in args.Skip(1))
        {
            if (option != "--quiet")
            {
                return TraceFile.Refuse(option, Usage);
            }
            quiet = true;
        }
        using var log = TraceFile.Open(args[0]);
        if (log is null)
        {
            return 2;
        }
        var pauses = new List<Pause>();
        var marked = new long[RootNames.Length];
        double suspendedAt = double.NaN;
        int generation = -1;
        long promoted = 0;
        double first = double.NaN, last = 0;
        foreach (var e in log.Events)
        {
            first = double.IsNaN(first) ? e.TimeStampRelativeMSec : first;
            last = e.TimeStampRelativeMSec;
            switch (e)
            {
                case GCSuspendEETraceData:
                    suspendedAt = e.TimeStampRelativeMSec;
                    break;
                case GCStartTraceData start:
                    generation = start.Depth;
                    Array.Clear(marked);
                    promoted = 0;
                    break;
                case GCMarkWithTypeTraceData mark when mark.Type >= 0 && mark.Type < marked.Length:
                    marked[mark.Type] += mark.Promoted;
                    break;
                case GCHeapStatsTraceData heap:
                    promoted = heap.TotalPromotedSize0 + heap.TotalPromotedSize1;
                    break;
                case GCNoUserDataTraceData when e.EventName.EndsWith("RestartEEStop", StringComparison.Ordinal):
                    // A suspension without a collection (a debugger, a thread abort) has no generation: not a GC pause.
                    if (generation >= 0 && !double.IsNaN(suspendedAt))
                    {
                        pauses.Add(new Pause(e.TimeStampRelativeMSec / 1000, generation, e.TimeStampRelativeMSec - suspendedAt, promoted, [.. marked]));
                    }
                    generation = -1;
                    suspendedAt = double.NaN;
                    break;
            }
        }
        if (pauses.Count == 0)
        {
            Console.WriteLine("no garbage collection in the trace (was it taken with --providers Microsoft-Windows-DotNETRuntime:0x1:4?)");
            return 1;
        }
        var seconds = (last - first) / 1000;
        Console.WriteLine($"{pauses.Count} collections in {seconds:F1} s; paused {pauses.Sum(p => p.Milliseconds):F0} ms ({100 * pauses.Sum(p => p.Milliseconds) / 1000 / Math.Max(seconds, 1e-9):F2} % of the time)");
        if (!quiet)
        {
            foreach (var p in pauses)
            {
                var roots = string.Join(", ", p.Marked.Select((bytes, i) => (bytes, i)).Where(r => r.bytes > 0).OrderByDescending(r => r.bytes)
                    .Select(r => $"{RootNames[r.i]} {r.bytes / 1e6:F2}"));
                Console.WriteLine($"  {p.AtSeconds,7:F1} s  gen{p.Generation}  paused {p.Milliseconds,5:F1} ms  survived {p.Promoted / 1e6,6:F2} MB  (marked MB by root: {roots})");
            }
        }
        foreach (var g in pauses.GroupBy(p => p.Generation).OrderBy(g => g.Key))
        {
            var ms = g.Select(p => p.Milliseconds).Order().ToArray();
            Console.WriteLine($"gen{g.Key}: {ms.Length} collections (every {seconds / ms.Length:F1} s), paused median {ms[ms.Length / 2]:F1} ms, max {ms[^1]:F1} ms; survived median {g.Select(p => p.Promoted).Order().ElementAt(ms.Length / 2) / 1e6:F2} MB");
        }
        return 0;
    }

    private sealed record Pause(double AtSeconds, int Generation, double Milliseconds, long Promoted, long[] Marked);
}
