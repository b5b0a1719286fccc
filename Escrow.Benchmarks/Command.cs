namespace Escrow.Benchmarks;

/// <summary>How every command of the benchmark tool starts and ends.</summary>
internal static class Command
{
    /// <summary>
    /// Parses the options (usage on --help; exit 2 with the usage on a bad option), runs the command, and reports an
    /// expected failure (a process, PostgreSQL or HTTP error) with exit code 1.
    /// </summary>
    public static async Task<int> RunAsync<TOptions>(Func<TOptions> parse, string usage, Func<TOptions, Task<int>> run, string what)
    {
        TOptions options;
        try
        {
            options = parse();
        }
        catch (HelpRequested)
        {
            Console.WriteLine(usage);
            return 0;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(usage);
            return 2;
        }
        try
        {
            return await run(options);
        }
        catch (Exception e) when (e is InvalidOperationException or NpgsqlException or HttpRequestException or IOException)
        {
            Console.Error.WriteLine($"{what} failed: {e.Message}");
            Console.Error.WriteLine(e.StackTrace);
            return 1;
        }
    }
}
