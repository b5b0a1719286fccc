using Microsoft.Extensions.Logging.Abstractions;

namespace Escrow.Tests.Sql;

public sealed class SchemaMigratorTests
{
    [Fact]
    public async Task Applying_the_schema_twice_succeeds_and_records_every_script_once()
    {
        var server = await PostgresServer.GetAsync();
        var connectionString = await server.CreateDatabaseAsync("migrator");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);

        await SchemaMigrator.ApplyAsync(dataSource, NullLogger.Instance);
        await SchemaMigrator.ApplyAsync(dataSource, NullLogger.Instance);

        var recorded = await ReadRecordedAsync(dataSource);
        Assert.Equal(
            ["001-orleans-main.sql", "002-orleans-persistence.sql", "003-orleans-reminders.sql", "004-orleans-clustering.sql", "010-escrow.sql", "020-alert-deliveries.sql", "030-audit-log.sql", "040-privacy.sql", "050-stuck-effects.sql"],
            recorded.Select(r => r.Name));
        Assert.All(recorded, r => Assert.Matches("^[0-9a-f]{64}$", r.Sha256));
    }

    [Fact]
    public async Task A_script_whose_checksum_changed_is_reapplied_and_its_checksum_updated()
    {
        var server = await PostgresServer.GetAsync();
        var connectionString = await server.CreateDatabaseAsync("migrator_changed");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using (var tamper = dataSource.CreateCommand(
            "UPDATE schema_migrations SET sha256 = 'old' WHERE name = '002-orleans-persistence.sql'; DELETE FROM orleansquery WHERE querykey = 'ReadFromStorageKey'"))
        {
            await tamper.ExecuteNonQueryAsync();
        }

        await SchemaMigrator.ApplyAsync(dataSource, NullLogger.Instance);

        var recorded = await ReadRecordedAsync(dataSource);
        Assert.NotEqual("old", recorded.Single(r => r.Name == "002-orleans-persistence.sql").Sha256);
        await using var count = dataSource.CreateCommand("SELECT count(*) FROM orleansquery WHERE querykey = 'ReadFromStorageKey'");
        Assert.Equal(1L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Two_migrators_starting_together_both_succeed()
    {
        var server = await PostgresServer.GetAsync();
        var connectionString = await server.CreateDatabaseAsync("migrator_race");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using (var reset = dataSource.CreateCommand("UPDATE schema_migrations SET sha256 = 'old'"))
        {
            await reset.ExecuteNonQueryAsync();
        }

        await Task.WhenAll(
            SchemaMigrator.ApplyAsync(dataSource, NullLogger.Instance),
            SchemaMigrator.ApplyAsync(dataSource, NullLogger.Instance));

        Assert.DoesNotContain(await ReadRecordedAsync(dataSource), r => r.Sha256 == "old");
    }

    private static async Task<List<(string Name, string Sha256)>> ReadRecordedAsync(NpgsqlDataSource dataSource)
    {
        var rows = new List<(string, string)>();
        await using var command = dataSource.CreateCommand("SELECT name, sha256 FROM schema_migrations ORDER BY name");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add((reader.GetString(0), reader.GetString(1)));
        }
        return rows;
    }
}
