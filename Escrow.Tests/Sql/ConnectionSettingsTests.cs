using Microsoft.Extensions.Configuration;

namespace Escrow.Tests.Sql;

/// <summary>
/// What the service adds to the configured connection string (<see cref="EscrowHosting.ConnectionString"/>), and that
/// it takes effect on PostgreSQL: statements run again and again are prepared once per connection.
/// </summary>
public sealed class ConnectionSettingsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static NpgsqlConnectionStringBuilder Effective(string configured) =>
        new(EscrowHosting.ConnectionString(new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["ConnectionStrings:Escrow"] = configured })
            .Build()));

    [Fact]
    public void No_reset_on_close_and_auto_prepare_are_added_unless_the_configuration_sets_them()
    {
        var added = Effective("Host=127.0.0.1;Database=escrow");
        Assert.True(added.NoResetOnClose);
        Assert.Equal(EscrowHosting.AutoPreparedStatementsMax, added.MaxAutoPrepare);
        Assert.Equal("escrow", added.Database);

        var configured = Effective("Host=127.0.0.1;Database=escrow;No Reset On Close=false;Max Auto Prepare=0");
        Assert.False(configured.NoResetOnClose);
        Assert.Equal(0, configured.MaxAutoPrepare);

        Assert.Equal(8, Effective("Host=127.0.0.1;MaxAutoPrepare=8").MaxAutoPrepare);
        Assert.False(Effective("Host=127.0.0.1;NoResetOnClose=false").NoResetOnClose);
    }

    [Theory]
    [InlineData("", true)]
    [InlineData(";Max Auto Prepare=0", false)]
    public async Task The_stores_repeated_ledger_insert_is_prepared_on_its_connection_unless_auto_prepare_is_off(string options, bool prepared)
    {
        var server = await PostgresServer.GetAsync();
        // One pooled connection, so the store's writes and the look-up below run on the same server session.
        var connectionString = Effective(await server.CreateDatabaseAsync("prepare") + ";Maximum Pool Size=1" + options).ConnectionString;
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var store = new PostgresEscrowStore(dataSource);
        var id = Guid.NewGuid();

        for (var seq = 0; seq < 10; seq++)
        {
            var projection = new EscrowProjection(id, "rcp-1", "held", 15_00, "EUR", 12_00, 3_00, "pi_1", null, null,
                T0, T0.AddHours(72), T0.AddHours(72), T0.AddMinutes(seq), 0, false, seq + 1);
            await store.SyncEscrowAsync(projection, [new LedgerEntry(id, seq, "captured", "held", 15_00, "EUR", T0.AddMinutes(seq), """{"pi": "pi_1"}""")]);
        }

        await using var command = dataSource.CreateCommand(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%INSERT INTO escrow_ledger%'");
        var count = (long)(await command.ExecuteScalarAsync())!;
        Assert.Equal(prepared, count > 0);
        Assert.Equal(10L, await CountAsync(dataSource, id));
    }

    private static async Task<long> CountAsync(NpgsqlDataSource dataSource, Guid id)
    {
        await using var command = dataSource.CreateCommand("SELECT count(*) FROM escrow_ledger WHERE escrow_id = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = id });
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
