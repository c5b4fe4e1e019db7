package heddle

// Two spellings of Arrow types that the worker reads: the manifest's type text
// (docs/manifest.md, what the compiler parses) and the canonical text behind schema
// fingerprints (docs/registry.md, "Schema fingerprint"). Both must follow those grammars to
// the letter and never arrow-go's own String() of a type, which differs between versions.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

var primitiveText = map[arrow.Type]string{
	arrow.NULL: "null", arrow.BOOL: "bool",
	arrow.INT8: "int8", arrow.INT16: "int16", arrow.INT32: "int32", arrow.INT64: "int64",
	arrow.UINT8: "uint8", arrow.UINT16: "uint16", arrow.UINT32: "uint32", arrow.UINT64: "uint64",
	arrow.FLOAT16: "float16", arrow.FLOAT32: "float32", arrow.FLOAT64: "float64",
	arrow.STRING: "utf8", arrow.LARGE_STRING: "large_utf8", arrow.BINARY: "binary",
	arrow.DATE32: "date32", arrow.DATE64: "date64",
}

// ManifestType is the manifest spelling of t, or an error for types a manifest cannot declare.
func ManifestType(t arrow.DataType) (string, error) {
	if text, ok := primitiveText[t.ID()]; ok {
		return text, nil
	}
	switch t := t.(type) {
	case *arrow.DurationType:
		return "duration", nil
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return fmt.Sprintf("timestamp[%s, %s]", t.Unit, t.TimeZone), nil
		}
		return fmt.Sprintf("timestamp[%s]", t.Unit), nil
	case arrow.DecimalType:
		return fmt.Sprintf("decimal(%d, %d)", t.GetPrecision(), t.GetScale()), nil
	case *arrow.ListType:
		inner, err := ManifestType(t.Elem())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("list<%s%s>", inner, question(t.ElemField().Nullable)), nil
	case *arrow.StructType:
		parts := make([]string, 0, t.NumFields())
		for _, f := range t.Fields() {
			inner, err := ManifestType(f.Type)
			if err != nil {
				return "", err
			}
			parts = append(parts, fmt.Sprintf("%s: %s%s", f.Name, inner, question(f.Nullable)))
		}
		return "struct<" + strings.Join(parts, ", ") + ">", nil
	}
	return "", fmt.Errorf("Arrow type %s cannot be declared in a Heddle manifest", t)
}

func question(nullable bool) string {
	if nullable {
		return "?"
	}
	return ""
}

// SchemaFingerprint is the hex SHA-256 of the schema's canonical text (docs/registry.md).
func SchemaFingerprint(schema *arrow.Schema) (string, error) {
	text, err := CanonicalSchemaText(schema)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:]), nil
}

// CanonicalSchemaText is the text a schema fingerprint hashes: one line per top-level field.
func CanonicalSchemaText(schema *arrow.Schema) (string, error) {
	lines := make([]string, 0, schema.NumFields())
	for _, f := range schema.Fields() {
		line, err := fieldText(f)
		if err != nil {
			return "", err
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n"), nil
}

func fieldText(f arrow.Field) (string, error) {
	t, err := canonicalType(f.Type)
	if err != nil {
		return "", err
	}
	return jsonName(f.Name) + ": " + t + notNull(f.Nullable), nil
}

func elementText(f arrow.Field) (string, error) {
	t, err := canonicalType(f.Type)
	return t + notNull(f.Nullable), err
}

func notNull(nullable bool) string {
	if nullable {
		return ""
	}
	return " not null"
}

// jsonName escapes a name as JSON.stringify does: Go's encoder would also escape <, > and &
// and non-ASCII line separators, which JavaScript leaves as they are.
func jsonName(name string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(name)
	out := strings.TrimSuffix(b.String(), "\n")
	return strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(out)
}

var canonicalPrimitive = map[arrow.Type]string{
	arrow.STRING_VIEW: "utf8_view", arrow.LARGE_BINARY: "large_binary",
	arrow.BINARY_VIEW: "binary_view",
}

func canonicalType(t arrow.DataType) (string, error) {
	if text, ok := primitiveText[t.ID()]; ok {
		return text, nil
	}
	if text, ok := canonicalPrimitive[t.ID()]; ok {
		return text, nil
	}
	switch t := t.(type) {
	case *arrow.FixedSizeBinaryType:
		return fmt.Sprintf("fixed_size_binary[%d]", t.ByteWidth), nil
	case arrow.DecimalType:
		return fmt.Sprintf("decimal%d(%d,%d)", t.BitWidth(), t.GetPrecision(), t.GetScale()), nil
	case *arrow.Time32Type:
		return fmt.Sprintf("time32[%s]", t.Unit), nil
	case *arrow.Time64Type:
		return fmt.Sprintf("time64[%s]", t.Unit), nil
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return fmt.Sprintf("timestamp[%s, %s]", t.Unit, jsonName(t.TimeZone)), nil
		}
		return fmt.Sprintf("timestamp[%s]", t.Unit), nil
	case *arrow.DurationType:
		return fmt.Sprintf("duration[%s]", t.Unit), nil
	case *arrow.MonthIntervalType:
		return "interval[year_month]", nil
	case *arrow.DayTimeIntervalType:
		return "interval[day_time]", nil
	case *arrow.MonthDayNanoIntervalType:
		return "interval[month_day_nano]", nil
	case *arrow.ListType:
		return wrapElement("list<", t.ElemField(), ">")
	case *arrow.LargeListType:
		return wrapElement("large_list<", t.ElemField(), ">")
	case *arrow.FixedSizeListType:
		return wrapElement(fmt.Sprintf("fixed_size_list[%d]<", t.Len()), t.ElemField(), ">")
	case *arrow.MapType:
		key, err := elementText(t.KeyField())
		if err != nil {
			return "", err
		}
		item, err := elementText(t.ItemField())
		if err != nil {
			return "", err
		}
		sorted := ""
		if t.KeysSorted {
			sorted = ", keys_sorted"
		}
		return "map<" + key + ", " + item + sorted + ">", nil
	case *arrow.StructType:
		parts := make([]string, 0, t.NumFields())
		for _, f := range t.Fields() {
			part, err := fieldText(f)
			if err != nil {
				return "", err
			}
			parts = append(parts, part)
		}
		return "struct<" + strings.Join(parts, ", ") + ">", nil
	case *arrow.DictionaryType:
		value, err := canonicalType(t.ValueType)
		if err != nil {
			return "", err
		}
		index, err := canonicalType(t.IndexType)
		if err != nil {
			return "", err
		}
		ordered := ""
		if t.Ordered {
			ordered = ", ordered"
		}
		return "dictionary<" + value + ", " + index + ordered + ">", nil
	}
	return "", fmt.Errorf("Arrow type %s has no canonical text", t)
}

func wrapElement(open string, elem arrow.Field, close string) (string, error) {
	inner, err := elementText(elem)
	return open + inner + close, err
}
