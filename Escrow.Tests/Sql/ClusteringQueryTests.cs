using System.Data;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;

namespace Escrow.Tests.Sql;

/// <summary>
/// The membership queries of sql/004-orleans-clustering.sql, run as Orleans runs them: the text from orleansquery,
/// parameters with bare names and CLR types (ORLEANS-ADONET.md §1.5).
/// </summary>
public sealed class ClusteringQueryTests() : FreshDatabase("clustering")
{
    private static readonly DateTime Now = new(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public async Task The_version_row_is_inserted_once_and_a_read_returns_it_when_no_silo_exists()
    {
        var deployment = NewDeployment();

        Assert.True(await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment)));
        Assert.False(await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment)));

        var rows = await QueryAsync("MembershipReadAllKey", ("DeploymentId", deployment));
        var row = Assert.Single(rows);
        Assert.Equal(0, row["Version"]);
        Assert.Null(row["Address"]);
        Assert.Null(row["StartTime"]);
        Assert.Single(await QueryAsync("MembershipReadRowKey",
            ("DeploymentId", deployment), ("Address", "127.0.0.1"), ("Port", 11111), ("Generation", 1)));
    }

    [Fact]
    public async Task A_silo_is_inserted_only_at_the_current_version_and_only_once()
    {
        var deployment = NewDeployment();
        await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment));

        Assert.False(await InsertSiloAsync(deployment, 11111, generation: 1, version: 5));
        Assert.True(await InsertSiloAsync(deployment, 11111, generation: 1, version: 0));
        Assert.False(await InsertSiloAsync(deployment, 11111, generation: 1, version: 1));
        Assert.True(await InsertSiloAsync(deployment, 11112, generation: 1, version: 1));

        var rows = await QueryAsync("MembershipReadAllKey", ("DeploymentId", deployment));
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(2, r["Version"]));
        Assert.Equal([11111, 11112], rows.Select(r => (int)r["Port"]!).Order());
        Assert.Equal("silo-11111", rows.Single(r => (int)r["Port"]! == 11111)["SiloName"]);
        Assert.Equal(DateTimeKind.Utc, ((DateTime)rows[0]["StartTime"]!).Kind);
    }

    [Fact]
    public async Task Concurrent_inserts_at_one_version_let_exactly_one_succeed()
    {
        var deployment = NewDeployment();
        await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment));

        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => Task.Run(() => InsertSiloAsync(deployment, 12000 + i, 1, version: 0))));

        Assert.Single(results, ok => ok);
        Assert.Equal(1, (await QueryAsync("MembershipReadAllKey", ("DeploymentId", deployment)))[0]["Version"]);
    }

    [Fact]
    public async Task A_silo_is_updated_only_at_the_current_version_and_only_if_it_exists()
    {
        var deployment = NewDeployment();
        await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment));
        await InsertSiloAsync(deployment, 11111, generation: 1, version: 0);
        const string Suspect = "127.0.0.1:11112@154766267,2026-11-27 06:38:12.364 GMT";

        Assert.False(await UpdateSiloAsync(deployment, 11111, 1, status: 6, Suspect, version: 0));
        Assert.False(await UpdateSiloAsync(deployment, 11999, 1, status: 6, Suspect, version: 1));
        Assert.True(await UpdateSiloAsync(deployment, 11111, 1, status: 6, Suspect, version: 1));

        var row = Assert.Single(await QueryAsync("MembershipReadRowKey",
            ("DeploymentId", deployment), ("Address", "127.0.0.1"), ("Port", 11111), ("Generation", 1)));
        Assert.Equal((2, 6, Suspect), ((int)row["Version"]!, (int)row["Status"]!, (string)row["SuspectTimes"]!));
        Assert.True(await UpdateSiloAsync(deployment, 11111, 1, status: 3, suspectTimes: null, version: 2));
    }

    [Fact]
    public async Task Gateways_are_the_active_silos_with_a_proxy_port()
    {
        var deployment = NewDeployment();
        await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment));
        await InsertSiloAsync(deployment, 11111, 1, version: 0, status: 3, proxyPort: 30001);
        await InsertSiloAsync(deployment, 11112, 1, version: 1, status: 6, proxyPort: 30002);
        await InsertSiloAsync(deployment, 11113, 1, version: 2, status: 3, proxyPort: 0);

        var gateways = await QueryAsync("GatewaysQueryKey", ("DeploymentId", deployment), ("Status", 3));

        var gateway = Assert.Single(gateways);
        Assert.Equal(("127.0.0.1", 30001, 1), ((string)gateway["Address"]!, (int)gateway["ProxyPort"]!, (int)gateway["Generation"]!));
    }

    [Fact]
    public async Task Cleanup_removes_only_defunct_silos_that_are_not_active()
    {
        var deployment = NewDeployment();
        await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment));
        await InsertSiloAsync(deployment, 11111, 1, version: 0, status: 6, aliveAt: Now.AddDays(-8));
        await InsertSiloAsync(deployment, 11112, 1, version: 1, status: 3, aliveAt: Now.AddDays(-8));
        await InsertSiloAsync(deployment, 11113, 1, version: 2, status: 6, aliveAt: Now);

        await QueryAsync("CleanupDefunctSiloEntriesKey", ("DeploymentId", deployment), ("IAmAliveTime", Now.AddDays(-7)));

        var ports = (await QueryAsync("MembershipReadAllKey", ("DeploymentId", deployment))).Select(r => (int)r["Port"]!).Order();
        Assert.Equal([11112, 11113], ports);
    }

    [Fact]
    public async Task The_heartbeat_moves_i_am_alive_time_and_deleting_the_deployment_removes_everything()
    {
        var deployment = NewDeployment();
        await ScalarBoolAsync("InsertMembershipVersionKey", ("DeploymentId", deployment));
        await InsertSiloAsync(deployment, 11111, 1, version: 0);

        await QueryAsync("UpdateIAmAlivetimeKey", ("DeploymentId", deployment), ("Address", "127.0.0.1"), ("Port", 11111),
            ("Generation", 1), ("IAmAliveTime", Now.AddMinutes(5)));
        var row = Assert.Single(await QueryAsync("MembershipReadAllKey", ("DeploymentId", deployment)));
        Assert.Equal((Now.AddMinutes(5), 1), ((DateTime)row["IAmAliveTime"]!, (int)row["Version"]!));

        await QueryAsync("DeleteMembershipTableEntriesKey", ("DeploymentId", deployment));
        Assert.Empty(await QueryAsync("MembershipReadAllKey", ("DeploymentId", deployment)));
    }

    [Fact]
    public async Task A_real_silo_host_on_ado_net_clustering_registers_itself_active_and_leaves_dead()
    {
        var clusterId = NewDeployment();
        var siloPort = PostgresServer.GetFreePort();
        var gatewayPort = PostgresServer.GetFreePort();
        using var host = Host.CreateDefaultBuilder()
            .UseOrleans(silo => silo
                .UseAdoNetClustering(o =>
                {
                    o.Invariant = "Npgsql";
                    o.ConnectionString = ConnectionString;
                })
                .Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = clusterId;
                    o.ServiceId = "svc-" + clusterId;
                })
                .ConfigureEndpoints(IPAddress.Loopback, siloPort, gatewayPort))
            .Build();

        await host.StartAsync();
        try
        {
            await Eventually.UntilAsync(() => SiloStatusAsync(clusterId, siloPort), s => s == 3, "the silo row to be Active (3)");
            var gateways = await QueryAsync("GatewaysQueryKey", ("DeploymentId", clusterId), ("Status", 3));
            Assert.Equal(gatewayPort, (int)Assert.Single(gateways)["ProxyPort"]!);
        }
        finally
        {
            await host.StopAsync();
        }

        Assert.Equal(6, await SiloStatusAsync(clusterId, siloPort));
    }

    private async Task<int?> SiloStatusAsync(string deployment, int port)
    {
        await using var command = DataSource.CreateCommand("SELECT status FROM orleans_membership WHERE deployment_id = @d AND port = @p");
        command.Parameters.AddWithValue("d", deployment);
        command.Parameters.AddWithValue("p", port);
        return await command.ExecuteScalarAsync() as int?;
    }

    private Task<bool> InsertSiloAsync(string deployment, int port, int generation, int version, int status = 3, int proxyPort = 30000,
        DateTime? aliveAt = null) =>
        ScalarBoolAsync("InsertMembershipKey",
            ("DeploymentId", deployment), ("Address", "127.0.0.1"), ("Port", port), ("Generation", generation),
            ("SiloName", $"silo-{port}"), ("HostName", "test-host"), ("Status", status), ("ProxyPort", proxyPort),
            ("StartTime", Now.AddMinutes(-1)), ("IAmAliveTime", aliveAt ?? Now), ("Version", version));

    private Task<bool> UpdateSiloAsync(string deployment, int port, int generation, int status, string? suspectTimes, int version) =>
        ScalarBoolAsync("UpdateMembershipKey",
            ("DeploymentId", deployment), ("Address", "127.0.0.1"), ("Port", port), ("Generation", generation),
            ("Status", status), ("SuspectTimes", suspectTimes), ("IAmAliveTime", Now), ("Version", version));

    private async Task<bool> ScalarBoolAsync(string queryKey, params (string Name, object? Value)[] parameters)
    {
        var row = Assert.Single(await QueryAsync(queryKey, parameters));
        return Convert.ToBoolean(Assert.Single(row.Values), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs a stored query like Orleans does; rows come back keyed by column name, case-insensitively.</summary>
    private async Task<List<Dictionary<string, object?>>> QueryAsync(string queryKey, params (string Name, object? Value)[] parameters)
    {
        string text;
        await using (var lookup = DataSource.CreateCommand("SELECT querytext FROM orleansquery WHERE querykey = @key"))
        {
            lookup.Parameters.AddWithValue("key", queryKey);
            text = (string?)await lookup.ExecuteScalarAsync() ?? throw new InvalidOperationException($"orleansquery has no {queryKey}.");
        }

        await using var command = DataSource.CreateCommand(text);
        foreach (var (name, value) in parameters)
        {
            // Like Orleans: bare names, a DbType from the CLR type, and a NULL that keeps its type.
            command.Parameters.Add(value is null
                ? new NpgsqlParameter(name, DbType.String) { Value = DBNull.Value }
                : new NpgsqlParameter(name, value));
        }
        var rows = new List<Dictionary<string, object?>>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var row = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < reader.FieldCount; i++)
            {
                row[reader.GetName(i)] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }
            rows.Add(row);
        }
        return rows;
    }

    private static string NewDeployment() => "cluster-" + Guid.NewGuid().ToString("N");
}
