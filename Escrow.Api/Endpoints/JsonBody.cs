using Microsoft.AspNetCore.Http.HttpResults;

namespace Escrow.Api.Endpoints;

/// <summary>Reads a JSON body by hand so that every malformed body gets a 400 problem detail that says what is wrong.</summary>
public static class JsonBody
{
    public const int BodyBytesMax = 256 * 1024;

    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web) { MaxDepth = 16 };

    public static async Task<(T? Body, ProblemHttpResult? Error)> ReadAsync<T>(HttpRequest request) where T : class
    {
        if (!request.HasJsonContentType())
        {
            return (null, Problems.Make(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", "Send the body as application/json."));
        }
        if (request.ContentLength > BodyBytesMax)
        {
            return (null, Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body may be at most {BodyBytesMax} bytes."));
        }
        try
        {
            using var buffer = new MemoryStream();
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
            if (buffer.Length > BodyBytesMax)
            {
                return (null, Problems.Make(StatusCodes.Status413PayloadTooLarge, "Body too large", $"The body may be at most {BodyBytesMax} bytes."));
            }
            var body = JsonSerializer.Deserialize<T>(buffer.ToArray(), Web);
            return body is null ? (null, Problems.BadRequest("The body must be a JSON object.")) : (body, null);
        }
        catch (JsonException e) when (FieldOf(e.Path) is { } field)
        {
            // A value of the wrong type (a number for a string, a string for a number): name the field like any other invalid field.
            return (null, Problems.Validation(new Dictionary<string, string[]> { [field] = [$"This value has the wrong JSON type: {e.Message}"] }));
        }
        catch (JsonException e)
        {
            return (null, Problems.BadRequest($"The body is not valid JSON for this request: {e.Message}"));
        }
    }

    /// <summary>The top-level property a JSON path such as <c>$.subject</c> or <c>$.tags[0]</c> points into, or null for the root.</summary>
    private static string? FieldOf(string? path)
    {
        if (path is null || !path.StartsWith("$.", StringComparison.Ordinal) || path.Length <= 2)
        {
            return null;
        }
        var name = path[2..];
        var end = name.IndexOfAny(['.', '[']);
        return end < 0 ? name : end == 0 ? null : name[..end];
    }
}
