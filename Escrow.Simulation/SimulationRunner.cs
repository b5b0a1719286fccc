using System.Globalization;
using System.Text;

namespace Escrow.Simulation;

/// <summary>Runs seeds one after the other on a reused cluster and sums up what happened.</summary>
public sealed class SimulationRunner
{
    /// <summary>What CI runs in the normal test pass: as many seeds as fit in this budget, at most this many.</summary>
    public const int CiSeedsMax = 400;
    public static readonly TimeSpan CiBudget = TimeSpan.FromMinutes(3);

    /// <summary>A fresh cluster every so many seeds keeps a long run's memory flat.</summary>
    private const int SeedsPerCluster = 100;

    public int SeedsRun { get; private set; }
    public long Lifecycles { get; private set; }
    public long Steps { get; private set; }
    public long FailedCalls { get; private set; }
    public Dictionary<FaultKind, long> Faults { get; } = [];
    public Dictionary<string, long> FinalStatuses { get; } = new(StringComparer.Ordinal);
    public List<SimulationResult> Failures { get; } = [];
    public TimeSpan Wall { get; private set; }

    public static string ReplayCommand(int seed) =>
        $"dotnet run --project Escrow.Simulation -c Release -- sim --seeds 1 --from {seed}";

    /// <summary>Runs the seeds in order until they are done, the budget is spent or <paramref name="stop"/> is signalled.</summary>
    public async Task RunAsync(int from, int count, TimeSpan? budget, SimulationSettings settings,
        Action<SimulationResult>? onResult = null, CancellationToken stop = default)
    {
        var wall = Stopwatch.StartNew();
        SimulationCluster? cluster = null;
        try
        {
            for (var seed = from; seed < from + count; seed++)
            {
                if (stop.IsCancellationRequested || (budget is { } b && wall.Elapsed >= b))
                {
                    break;
                }
                if (cluster is null || cluster.SeedsRun >= SeedsPerCluster)
                {
                    if (cluster is not null)
                    {
                        await cluster.DisposeAsync();
                    }
                    cluster = await SimulationCluster.StartAsync();
                }
                var result = await new SimulationRun(cluster, seed, settings).RunAsync();
                Add(result);
                onResult?.Invoke(result);
            }
        }
        finally
        {
            if (cluster is not null)
            {
                await cluster.DisposeAsync();
            }
            Wall = wall.Elapsed;
        }
    }

    private void Add(SimulationResult r)
    {
        SeedsRun++;
        Lifecycles += r.Escrows;
        Steps += r.Steps;
        FailedCalls += r.FailedCalls;
        foreach (var (k, v) in r.Faults)
        {
            Faults[k] = Faults.GetValueOrDefault(k) + v;
        }
        foreach (var (k, v) in r.FinalStatuses)
        {
            FinalStatuses[k] = FinalStatuses.GetValueOrDefault(k) + v;
        }
        if (!r.Passed)
        {
            Failures.Add(r);
        }
    }

    public static string Describe(SimulationResult r)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"seed {r.Seed} FAILED with {r.Violations.Count} violation(s); replay: {ReplayCommand(r.Seed)}\n");
        foreach (var v in r.Violations.Take(20))
        {
            sb.Append("  - ").Append(v).Append('\n');
        }
        return sb.ToString();
    }

    public string Summary()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"seeds: {SeedsRun}, lifecycles (escrows): {Lifecycles}, actions: {Steps}, calls failed by faults: {FailedCalls}, wall: {Wall:hh\\:mm\\:ss}\n");
        sb.Append("faults injected by kind:\n");
        foreach (var (k, v) in Faults.OrderBy(kv => kv.Key.ToString(), StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"  {k,-24} {v}\n");
        }
        sb.Append("final statuses:\n");
        foreach (var (k, v) in FinalStatuses.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sb.Append(CultureInfo.InvariantCulture, $"  {k,-24} {v}\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"seeds with violations: {Failures.Count}\n");
        foreach (var f in Failures)
        {
            sb.Append(Describe(f));
        }
        return sb.ToString();
    }
}
