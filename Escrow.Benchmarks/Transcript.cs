namespace Escrow.Benchmarks;

/// <summary>
/// A run of a benchmark command: its id, its folder of logs (under the temporary directory), and what it prints, kept
/// to be saved in that folder (transcript.txt). <see cref="Say"/> is safe to use from concurrent tasks.
/// </summary>
public sealed class Transcript(string kind)
{
    private readonly StringBuilder _text = new();
    private readonly DateTime _started = DateTime.UtcNow;

    public string RunId { get; } = DateTime.UtcNow.ToString("MMddHHmmss", CultureInfo.InvariantCulture) + Guid.NewGuid().ToString("N")[..4];

    public string Work => Path.Combine(Path.GetTempPath(), $"escrow-{kind}-{RunId}");

    /// <summary>Creates the run's folder and prints what runs and on which machine.</summary>
    public void Begin(string title, string commandLine)
    {
        Directory.CreateDirectory(Work);
        Say($"Escrow {title} {RunId}: {commandLine}");
        Say($"Machine: {Environment.ProcessorCount} cores, {ProcStat.MemTotalGiB():F1} GiB, {ProcStat.CpuModel()}; load average {ProcStat.LoadAverage()} at start");
    }

    public void Say(string line = "")
    {
        lock (_text)
        {
            Console.WriteLine(line);
            _text.AppendLine(line);
        }
    }

    /// <summary>Prints the run time and saves the transcript in the run's folder.</summary>
    public async Task SaveAsync()
    {
        var path = Path.Combine(Work, "transcript.txt");
        Say($"Total run time {(DateTime.UtcNow - _started).TotalMinutes:F1} min; transcript {path}");
        string text;
        lock (_text)
        {
            text = _text.ToString();
        }
        await File.WriteAllTextAsync(path, text);
    }
}
