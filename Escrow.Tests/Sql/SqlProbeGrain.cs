namespace Escrow.Tests.Sql;

[GenerateSerializer, Alias("escrow.tests.sql-probe-state.v1")]
public sealed class SqlProbeState
{
    [Id(0)] public int Value { get; set; }

    [Id(1)] public int Ticks { get; set; }
}

[Alias("escrow.tests.sql-probe")]
public interface ISqlProbeGrain : IGrainWithStringKey
{
    [Alias("get")] Task<SqlProbeSnapshot> GetAsync();

    [Alias("set")] Task SetValueAsync(int value);

    [Alias("clear")] Task ClearAsync();

    [Alias("start-ticking")] Task StartTickingAsync(TimeSpan period);
}

[GenerateSerializer, Immutable, Alias("escrow.tests.sql-probe-snapshot.v1")]
public sealed record SqlProbeSnapshot(int Value, int Ticks, string? Etag, bool RecordExists);

/// <summary>A minimal grain that exercises the ADO.NET storage and reminder providers against PostgreSQL.</summary>
[GrainType("sql-probe")]
public sealed class SqlProbeGrain(
    [PersistentState("sql-probe", SqlTestCluster.StorageName)] IPersistentState<SqlProbeState> state) : Grain, ISqlProbeGrain, IRemindable
{
    public const string ReminderName = "tick";

    public Task<SqlProbeSnapshot> GetAsync() =>
        Task.FromResult(new SqlProbeSnapshot(state.State.Value, state.State.Ticks, state.Etag, state.RecordExists));

    public async Task SetValueAsync(int value)
    {
        state.State.Value = value;
        await state.WriteStateAsync();
    }

    public Task ClearAsync() => state.ClearStateAsync();

    public async Task StartTickingAsync(TimeSpan period) => await this.RegisterOrUpdateReminder(ReminderName, period, period);

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        state.State.Ticks++;
        await state.WriteStateAsync();
    }
}
