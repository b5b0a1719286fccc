namespace Escrow.Tests.Sql;

/// <summary>A test class's own database on the shared test server, with the schema applied, created before its tests run.</summary>
public abstract class FreshDatabase(string prefix) : IAsyncLifetime
{
    private string? _connectionString;
    private NpgsqlDataSource? _dataSource;

    protected string ConnectionString => _connectionString ?? throw new InvalidOperationException("InitializeAsync has not run.");

    protected NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("InitializeAsync has not run.");

    public async Task InitializeAsync()
    {
        _connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync(prefix);
        _dataSource = NpgsqlDataSource.Create(_connectionString);
    }

    public async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
    }
}
