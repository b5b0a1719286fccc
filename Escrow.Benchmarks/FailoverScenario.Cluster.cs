using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;

namespace Escrow.Benchmarks;

/// <summary>The cluster seen from PostgreSQL: membership and where the grains live.</summary>
public sealed partial class FailoverScenario
{
    private readonly record struct Member(string Address, int Port, int Status, bool Suspected);

    private static string StatusName(int status) => status switch
    {
        1 => "Created",
        2 => "Joining",
        3 => "Active",
        4 => "ShuttingDown",
        5 => "Stopping",
        6 => "Dead",
        _ => status.ToString(CultureInfo.InvariantCulture),
    };

    private static Task<List<Member>> MembershipAsync(string connection, string clusterId) => Sql.RowsAsync(connection,
        "SELECT address, port, status, coalesce(suspect_times, '') <> '' FROM orleans_membership WHERE deployment_id = @d ORDER BY port",
        r => new Member(r.GetString(0), r.GetInt32(1), r.GetInt32(2), r.GetBoolean(3)), ("d", clusterId));

    /// <summary>Which silo (by silo port) hosts each escrow activation, and activation counts per grain type and silo.</summary>
    private async Task<(Dictionary<Guid, int> Escrows, List<string> Counts)> PlacementAsync(string connection, string clusterId, string serviceId, int process2Port)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddOrleansClient(c =>
        {
            c.UseAdoNetClustering(a =>
            {
                a.Invariant = "Npgsql";
                a.ConnectionString = connection;
            });
            c.Configure<ClusterOptions>(x =>
            {
                x.ClusterId = clusterId;
                x.ServiceId = serviceId;
            });
        });
        await using var provider = services.BuildServiceProvider();
        var hosted = provider.GetServices<IHostedService>().ToList();
        var escrows = new Dictionary<Guid, int>();
        var counts = new List<string>();
        try
        {
            foreach (var h in hosted)
            {
                await h.StartAsync(CancellationToken.None);
            }
            var management = provider.GetRequiredService<IClusterClient>().GetGrain<IManagementGrain>(0);
            var watch = Stopwatch.StartNew();
            var stats = await management.GetDetailedGrainStatistics();
            foreach (var s in stats)
            {
                if (s.GrainId.Type.ToString() == "escrow" && Guid.TryParse(s.GrainId.Key.ToString(), out var id))
                {
                    escrows[id] = s.SiloAddress.Endpoint.Port;
                }
            }
            foreach (var g in stats.Where(s => !s.GrainType.StartsWith("Orleans", StringComparison.Ordinal))
                         .GroupBy(s => s.GrainId.Type.ToString()).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var onTwo = g.Count(s => s.SiloAddress.Endpoint.Port == process2Port);
                counts.Add($"{g.Key,-28} {g.Count(),5} activations: process 1 {g.Count() - onTwo}, process 2 {onTwo}");
            }
            counts.Add($"(snapshot took {watch.Elapsed.TotalSeconds:F2} s)");
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or InvalidOperationException)
        {
            counts.Add($"placement snapshot failed: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            foreach (var h in hosted.AsEnumerable().Reverse())
            {
                try
                {
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await h.StopAsync(cts.Token);
                }
                catch (Exception e) when (e is OrleansException or OperationCanceledException)
                {
                }
            }
        }
        return (escrows, counts);
    }

    // ---- ledger queries ----
}
