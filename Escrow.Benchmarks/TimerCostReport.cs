using System.Diagnostics;
using System.Globalization;
using Escrow.Silo;

namespace Escrow.Benchmarks;

/// <summary>
/// What long waits cost a process while nothing is due: the CPU of this process, idle but for a few periodic timers
/// (a silo always has some: the dashboard's metrics, messaging, collection), with no waits, with N waits on
/// <see cref="TimeProvider.System"/>, and with N waits on <see cref="CoalescingTimeProvider"/> (the reminder service's
/// clock in the service). Each wait is a <c>Task.Delay</c> of 10 to 20 minutes with a linked cancellation token, as
/// Orleans' reminder service waits for each reminder it holds in memory, and is made among ~2 KB of other live objects,
/// as a reminder's wait sits in a silo's heap among activations and their state (about 8 KB per open escrow, eighth
/// session of docs/BENCHMARKS.md): waits allocated back to back share cache lines and cost the timer queue's walk
/// far less than scattered ones.
/// </summary>
public static class TimerCostReport
{
    public const string Usage = """
        usage: timers [--waits N] [--seconds S]
          --waits N     long waits per variant (default 100000)
          --seconds S   each variant measured over S seconds, three times (default 10)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var waits = 100_000;
        var seconds = 10;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--waits" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n >= 0:
                    waits = n;
                    i++;
                    break;
                case "--seconds" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var s) && s > 0:
                    seconds = s;
                    i++;
                    break;
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    return 0;
                default:
                    Console.Error.WriteLine($"Unknown or invalid option '{args[i]}'.");
                    Console.Error.WriteLine(Usage);
                    return 2;
            }
        }

        Console.WriteLine($"Idle CPU of this process (100 % = one core), {Environment.ProcessorCount} cores; 20 periodic timers of 50 to 430 ms run throughout.");
        var periodic = Enumerable.Range(0, 20).Select(i => new Timer(static _ => { }, null, 0, 50 + i * 20)).ToList();
        try
        {
            await MeasureAsync("no waits", TimeProvider.System, 0, seconds);
            await MeasureAsync($"{waits} waits on the system clock", TimeProvider.System, waits, seconds);
            using var coalescing = new CoalescingTimeProvider(TimeProvider.System);
            await MeasureAsync($"{waits} waits on CoalescingTimeProvider", coalescing, waits, seconds);
        }
        finally
        {
            periodic.ForEach(t => t.Dispose());
        }
        return 0;
    }

    private static async Task MeasureAsync(string label, TimeProvider clock, int waits, int seconds)
    {
        using var cts = new CancellationTokenSource();
        var random = new Random(1);
        var pending = new Task[waits];
        var linked = new CancellationTokenSource[waits];
        var neighbours = new byte[waits][];
        for (var i = 0; i < waits; i++)
        {
            neighbours[i] = new byte[random.Next(500, 3500)];
            linked[i] = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
            pending[i] = Task.Delay(TimeSpan.FromMinutes(10) + TimeSpan.FromMilliseconds(random.Next(0, 600_000)), clock, linked[i].Token);
        }
        GC.Collect();
        await Task.Delay(TimeSpan.FromSeconds(2));
        var figures = new List<double>();
        for (var round = 0; round < 3; round++)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
            figures.Add(100 * used.TotalSeconds / watch.Elapsed.TotalSeconds);
        }
        Console.WriteLine($"   {label,-48} {string.Join(", ", figures.Select(f => f.ToString("F2", CultureInfo.InvariantCulture) + " %"))} (median {figures.Order().ElementAt(1):F2} %)");
        await cts.CancelAsync();
        try
        {
            await Task.WhenAll(pending);
        }
        catch (OperationCanceledException)
        {
            // Every wait was cancelled: the next variant starts from an empty timer queue.
        }
        Array.ForEach(linked, l => l.Dispose());
        GC.KeepAlive(neighbours);
    }
}
