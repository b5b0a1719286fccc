namespace Escrow.Benchmarks;

/// <summary>What a run prints, kept to be saved beside its logs (transcript.txt). Safe to use from concurrent tasks.</summary>
public sealed class Transcript
{
    private readonly StringBuilder _text = new();

    public void Say(string line = "")
    {
        lock (_text)
        {
            Console.WriteLine(line);
            _text.AppendLine(line);
        }
    }

    public async Task SaveAsync(string directory)
    {
        string text;
        lock (_text)
        {
            text = _text.ToString();
        }
        await File.WriteAllTextAsync(Path.Combine(directory, "transcript.txt"), text);
    }
}
