namespace Escrow.Grains;

/// <summary>
/// How every validator of ours collects what is wrong with a section: each rule that is broken adds the message that
/// says how to fix it, and start-up fails with all of them at once rather than the first alone.
/// </summary>
public sealed class OptionsErrors
{
    private readonly List<string> _errors = [];

    /// <summary>Adds <paramref name="message"/> when <paramref name="broken"/>.</summary>
    public OptionsErrors If(bool broken, string message)
    {
        if (broken)
        {
            _errors.Add(message);
        }
        return this;
    }

    public OptionsErrors AddRange(IEnumerable<string> messages)
    {
        _errors.AddRange(messages);
        return this;
    }

    public ValidateOptionsResult Result() => _errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(_errors);
}
