using Orleans.Storage;

namespace Escrow.Tests.Sql;

/// <summary>The Orleans ADO.NET storage and reminder providers running on our sql/ scripts (ORLEANS-ADONET.md §1.3, §1.4).</summary>
public sealed class OrleansProviderContractTests() : FreshDatabase("orleans")
{
    [Fact]
    public async Task State_written_before_all_silos_stop_is_read_by_a_new_cluster_of_the_same_service()
    {
        var serviceId = NewServiceId();
        await using (var first = await SqlTestCluster.StartAsync(ConnectionString, serviceId, silos: 2))
        {
            await first.Client.GetGrain<ISqlProbeGrain>("restart").SetValueAsync(42);
            await first.StopAllSilosAsync();
        }

        await using var second = await SqlTestCluster.StartAsync(ConnectionString, serviceId);
        var snapshot = await second.Client.GetGrain<ISqlProbeGrain>("restart").GetAsync();

        Assert.Equal(42, snapshot.Value);
        Assert.Equal("1", snapshot.Etag);
        Assert.True(snapshot.RecordExists);
    }

    [Fact]
    public async Task A_reminder_registered_before_a_restart_fires_after_it()
    {
        var serviceId = NewServiceId();
        int ticksBefore;
        await using (var first = await SqlTestCluster.StartAsync(ConnectionString, serviceId))
        {
            var grain = first.Client.GetGrain<ISqlProbeGrain>("reminder");
            await grain.StartTickingAsync(TimeSpan.FromSeconds(1));
            ticksBefore = (await Eventually.UntilAsync(grain.GetAsync, s => s.Ticks >= 1, "the first reminder tick")).Ticks;
            await first.StopAllSilosAsync();
        }

        await using var second = await SqlTestCluster.StartAsync(ConnectionString, serviceId);
        // The new activation does not register anything: only the stored reminder can raise the count.
        var restarted = second.Client.GetGrain<ISqlProbeGrain>("reminder");
        await Eventually.UntilAsync(restarted.GetAsync, s => s.Ticks > ticksBefore + 1, "reminder ticks after the restart");
    }

    [Fact]
    public async Task A_version_bumped_behind_the_grains_back_fails_its_next_write_and_the_stored_state_wins()
    {
        var serviceId = NewServiceId();
        await using var cluster = await SqlTestCluster.StartAsync(ConnectionString, serviceId);
        var grain = cluster.Client.GetGrain<ISqlProbeGrain>("conflict");
        await grain.SetValueAsync(1);

        await using (var bump = DataSource.CreateCommand(
            "UPDATE orleans_grain_state SET version = version + 1 WHERE service_id = @service_id AND grain_type = 'sql-probe' AND grain_id_ext = 'conflict'"))
        {
            bump.Parameters.AddWithValue("service_id", serviceId);
            Assert.Equal(1, await bump.ExecuteNonQueryAsync());
        }

        await Assert.ThrowsAsync<InconsistentStateException>(() => grain.SetValueAsync(2));
        var reread = await grain.GetAsync();
        Assert.Equal(1, reread.Value);
        Assert.Equal("2", reread.Etag);
    }

    [Fact]
    public async Task Two_concurrent_first_writes_of_one_state_let_exactly_one_win()
    {
        var serviceId = NewServiceId();
        await using var cluster = await SqlTestCluster.StartAsync(ConnectionString, serviceId);
        var storage = cluster.GetSiloServiceProvider(cluster.Silos[0].SiloAddress)
            .GetRequiredKeyedService<IGrainStorage>(SqlTestCluster.StorageName);
        var grainId = GrainId.Create("sql-probe", "race");

        async Task<bool> WriteFirstAsync(int value)
        {
            try
            {
                await storage.WriteStateAsync("sql-probe", grainId, new GrainState<SqlProbeState>(new SqlProbeState { Value = value }));
                return true;
            }
            catch (InconsistentStateException)
            {
                return false;
            }
        }

        var results = await Task.WhenAll(Enumerable.Range(1, 4).Select(v => Task.Run(() => WriteFirstAsync(v))));

        Assert.Single(results, won => won);
        await using var count = DataSource.CreateCommand("SELECT count(*), max(version) FROM orleans_grain_state WHERE service_id = @service_id");
        count.Parameters.AddWithValue("service_id", serviceId);
        await using var reader = await count.ExecuteReaderAsync();
        await reader.ReadAsync();
        Assert.Equal((1L, 1), (reader.GetInt64(0), reader.GetInt32(1)));
    }

    [Fact]
    public async Task Clearing_state_keeps_counting_versions_and_a_later_write_succeeds()
    {
        var serviceId = NewServiceId();
        await using var cluster = await SqlTestCluster.StartAsync(ConnectionString, serviceId);
        var grain = cluster.Client.GetGrain<ISqlProbeGrain>("clear");
        await grain.SetValueAsync(5);

        await grain.ClearAsync();
        var cleared = await grain.GetAsync();
        Assert.Equal((0, "2", false), (cleared.Value, cleared.Etag, cleared.RecordExists));
        Assert.True(await StoredPayloadIsNullAsync(serviceId, "clear"));

        await grain.SetValueAsync(7);
        await cluster.DeactivateAsync(grain);
        var rewritten = await grain.GetAsync();
        Assert.Equal((7, "3", true), (rewritten.Value, rewritten.Etag, rewritten.RecordExists));
        Assert.False(await StoredPayloadIsNullAsync(serviceId, "clear"));
    }

    private async Task<bool> StoredPayloadIsNullAsync(string serviceId, string key)
    {
        await using var command = DataSource.CreateCommand(
            "SELECT payload IS NULL FROM orleans_grain_state WHERE service_id = @service_id AND grain_type = 'sql-probe' AND grain_id_ext = @key");
        command.Parameters.AddWithValue("service_id", serviceId);
        command.Parameters.AddWithValue("key", key);
        return (bool)(await command.ExecuteScalarAsync() ?? throw new InvalidOperationException($"No stored state for {key}."));
    }

    private static string NewServiceId() => "svc-" + Guid.NewGuid().ToString("N");
}
