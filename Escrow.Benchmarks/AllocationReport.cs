using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

namespace Escrow.Benchmarks;

/// <summary>
/// Where a process's allocations come from, from a trace of its allocation samples (the runtime samples about every
/// 100 KB allocated): <c>dotnet-trace collect -p PID --profile gc-verbose --duration 00:00:00:30 -o api.nettrace</c>
/// during a benchmark phase, then <c>allocations api.nettrace</c>. Prints the sampled bytes by type, and by method
/// inclusive of what it calls (async continuations resumed inline count for the frames below them, so read the
/// method list as "on the stack when", not as exclusive cost).
/// </summary>
public static class AllocationReport
{
    public const string Usage = """
        usage: allocations TRACE.nettrace [--type SUBSTRING] [--frame SUBSTRING] [--top N]
          --type    only samples whose type name contains SUBSTRING (e.g. System.String)
          --frame   only samples with a frame whose method name contains SUBSTRING (e.g. Escrow.Sandbox)
          --top     rows of each list (default 40)
        """;

    public static int Run(string[] args)
    {
        if (TraceFile.WantsUsage(args, Usage, out var exitCode))
        {
            return exitCode;
        }
        string? type = null, frame = null;
        var top = 40;
        for (var i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--type" when i + 1 < args.Length:
                    type = args[++i];
                    break;
                case "--frame" when i + 1 < args.Length:
                    frame = args[++i];
                    break;
                case "--top" when i + 1 < args.Length && int.TryParse(args[i + 1], out var n) && n > 0:
                    top = n;
                    i++;
                    break;
                default:
                    return TraceFile.Refuse(args[i], Usage);
            }
        }
        using var log = TraceFile.Open(args[0]);
        if (log is null)
        {
            return 2;
        }
        var byType = new Dictionary<string, long>(StringComparer.Ordinal);
        var byMethod = new Dictionary<string, long>(StringComparer.Ordinal);
        long total = 0;
        double first = double.NaN, last = 0;
        var onStack = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in log.Events)
        {
            if (e is not GCAllocationTickTraceData tick || (type is not null && !(tick.TypeName ?? "").Contains(type, StringComparison.Ordinal)))
            {
                continue;
            }
            var stack = e.CallStack();
            if (frame is not null && !Frames(stack).Any(m => m.Contains(frame, StringComparison.Ordinal)))
            {
                continue;
            }
            var bytes = tick.AllocationAmount64;
            total += bytes;
            first = double.IsNaN(first) ? e.TimeStampRelativeMSec : first;
            last = e.TimeStampRelativeMSec;
            Add(byType, tick.TypeName ?? "?", bytes);
            onStack.Clear();
            foreach (var method in Frames(stack))
            {
                if (onStack.Add(method))
                {
                    Add(byMethod, method, bytes);
                }
            }
        }
        if (total == 0)
        {
            // Nothing to share out (a trace without allocation ticks, or filters that match none): say so, not "NaN".
            Console.WriteLine("no allocation samples" + (type is null && frame is null
                ? " in the trace (take it with --profile gc-verbose)"
                : " match the filters") + ".");
            return 1;
        }
        Console.WriteLine($"sampled {total / 1e6:F1} MB over {(last - first) / 1000:F1} s{(type is null ? "" : $", types containing '{type}'")}{(frame is null ? "" : $", with a frame containing '{frame}'")}");
        Print("by type", byType, total, top);
        Print("by method, inclusive", byMethod, total, top);
        return 0;
    }

    private static IEnumerable<string> Frames(TraceCallStack? stack)
    {
        for (var s = stack; s is not null; s = s.Caller)
        {
            var name = s.CodeAddress.FullMethodName;
            yield return string.IsNullOrEmpty(name) ? s.CodeAddress.ModuleName + "!?" : name;
        }
    }

    private static void Add(Dictionary<string, long> map, string key, long bytes) => map[key] = map.GetValueOrDefault(key) + bytes;

    private static void Print(string title, Dictionary<string, long> map, long total, int top)
    {
        Console.WriteLine($"-- {title}");
        foreach (var (name, bytes) in map.OrderByDescending(p => p.Value).Take(top))
        {
            Console.WriteLine($"{100.0 * bytes / Math.Max(1, total),6:F2} %  {bytes / 1e6,8:F1} MB  {(name.Length > 180 ? name[..180] + "…" : name)}");
        }
    }
}
